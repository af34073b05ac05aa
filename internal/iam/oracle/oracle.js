// Test-only oracle: reads a JSON array of cases on stdin, runs each through
// @cloud-copilot/iam-simulate (AGPL-3.0, installed into this folder only and
// run as a separate process; gatehouse never links or copies it) and prints
// a JSON array of verdicts on stdout, one per case:
//   {"decision": "Allow" | "ExplicitDeny" | "ImplicitDeny"} or {"error": "..."}
// A case: {identity: [{name, policy}], session: policy|null,
//          boundary: [{name, policy}], action, resource, principal,
//          context: {key: [values]}}
'use strict'
const { runSimulation } = require('@cloud-copilot/iam-simulate')

const verdicts = {
  Allowed: 'Allow',
  ExplicitlyDenied: 'ExplicitDeny',
  ImplicitlyDenied: 'ImplicitDeny',
}

async function one(c) {
  const contextVariables = {}
  for (const [k, v] of Object.entries(c.context || {})) {
    contextVariables[k] = v.length === 1 && !c.multi?.includes(k) ? v[0] : v
  }
  const sim = {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: '123456789012' },
      contextVariables,
    },
    identityPolicies: c.identity,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  }
  if (c.session) sim.sessionPolicy = c.session
  if (c.boundary && c.boundary.length) sim.permissionBoundaryPolicies = c.boundary
  const res = await runSimulation(sim, {})
  if (res.resultType === 'error') {
    return { error: JSON.stringify(res.errors).slice(0, 500) }
  }
  const d = verdicts[res.overallResult]
  return d ? { decision: d } : { error: 'unknown result ' + res.overallResult }
}

async function main() {
  let input = ''
  for await (const chunk of process.stdin) input += chunk
  const cases = JSON.parse(input)
  const out = []
  for (const c of cases) {
    try {
      out.push(await one(c))
    } catch (e) {
      out.push({ error: String(e && e.message ? e.message : e).slice(0, 500) })
    }
  }
  process.stdout.write(JSON.stringify(out))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
