package websso

import (
	"bytes"
	"html/template"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/requestid"
)

const pageStyle = `<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.5;padding:0 1em}
code{background:#eee;padding:0 .2em}table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
.demo{background:#fff3cd;border:1px solid #e0b000;padding:.5em}.err{background:#fde2e1;border:1px solid #d33;padding:.5em}</style>`

var pages = template.Must(template.New("").Parse(`
{{define "login"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in to gatehouse</title>` + pageStyle + `</head><body>
<h1>Sign in to gatehouse</h1>
{{if .CLI}}<p>This sign-in was started by <code>gatehouse login</code>; when it succeeds your terminal receives the session.</p>{{end}}
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
{{if .SAML}}<h2>Single sign-on (SAML)</h2><ul>{{range .SAML}}<li><a href="{{.URL}}">{{.Name}}</a>{{if .Demo}} <strong>DEMO IdP — not for production</strong>{{end}}</li>{{end}}</ul>{{end}}
{{if .OIDC}}<h2>Single sign-on (OpenID Connect)</h2><ul>{{range .OIDC}}<li><a href="{{.URL}}">{{.Name}}</a>{{if .Demo}} <strong>DEMO IdP — not for production</strong>{{end}}</li>{{end}}</ul>{{end}}
<h2>Local password</h2>
<form method="post" action="{{.Action}}">
<input type="hidden" name="relay" value="{{.Relay}}">
<p><label>User name <input name="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Sign in</button></p>
</form>
</body></html>{{end}}

{{define "roles"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>gatehouse: your roles</title>` + pageStyle + `</head><body>
<h1>Signed in as {{.User}}</h1>
<p>Signed in through <code>{{.IdP}}</code>. Your session expires at {{.Expires}}.</p>
<h2>Roles you may use</h2>
{{if .Roles}}<table><tr><th>Role</th><th>ARN</th><th>Max session</th><th>From</th></tr>
{{range $i, $r := .Roles}}<tr><td>{{$r.Name}}{{if eq $i 0}} (default){{end}}</td><td><code>{{$r.ARN}}</code></td><td>{{$r.MaxSessionDuration}} s</td><td>{{$r.Source}}</td></tr>{{end}}
</table>
<p>Use them from a terminal: <code>gatehouse login</code>, then <code>gatehouse roles</code> and
<code>gatehouse assume-role ROLE</code>; AWS clients use <code>credential_process = gatehouse credential-process</code>.</p>
{{else}}<p>You are not entitled to any role yet. Ask an administrator to add the gatehouse issuer to a role's trust policy,
or your IdP to send the role in the <code>https://aws.amazon.com/SAML/Attributes/Role</code> attribute.</p>{{end}}
</body></html>{{end}}

{{define "error"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>gatehouse sign-in failed: {{.Code}}</title>` + pageStyle + `</head><body>
<h1>Sign-in failed</h1>
<p><strong>Error:</strong> <code>{{.Code}}</code></p>
<p><strong>Cause:</strong> {{.Cause}}</p>
{{if .Fix}}<p><strong>Fix:</strong> {{.Fix}}</p>{{end}}
<p><a href="{{.Retry}}">Try again</a></p>
<p><small>Request id <code>{{.RequestID}}</code>: give it to your gatehouse administrator, who can find the full event in the audit log.</small></p>
</body></html>{{end}}

{{define "autopost"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body onload="document.forms[0].submit()">{{if .Demo}}<p><strong>DEMO IdP — not for production</strong></p>{{end}}
<form method="post" action="{{.Action}}">{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<noscript><button type="submit">Continue</button></noscript></form></body></html>{{end}}
`))

func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'; script-src 'unsafe-inline'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// flowError is a failed sign-in, shown as a page naming the cause and the
// fix, with the passthrough header set.
type flowError struct {
	Status      int
	Passthrough string // PassthroughHeader value
	Code        string
	Cause, Fix  string
}

func (s *Service) renderError(w http.ResponseWriter, r *http.Request, e *flowError) {
	if e.Passthrough != "" {
		w.Header().Set(PassthroughHeader, e.Passthrough)
	}
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	render(w, status, "error", map[string]any{"Code": e.Code, "Cause": e.Cause, "Fix": e.Fix,
		"RequestID": requestid.From(r.Context()), "Retry": s.o.PublicURL + "/login"})
}

// AutoPost renders an HTML form that posts fields to action on load
// (SAML HTTP-POST binding, saml-bindings-2.0-os §3.5.4). demo labels the
// page as the demo IdP's.
func AutoPost(w http.ResponseWriter, action string, fields map[string]string, demo bool) {
	render(w, http.StatusOK, "autopost", map[string]any{"Title": "Signing in…", "Action": action, "Fields": fields, "Demo": demo})
}
