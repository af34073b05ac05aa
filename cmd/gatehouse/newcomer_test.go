package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readmeFlow returns the shell block of README.md between the
// newcomer-flow markers.
func readmeFlow(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)<!-- newcomer-flow[^>]*-->\\s*```sh\\n(.*?)```\\s*<!-- /newcomer-flow -->").FindSubmatch(b)
	require.NotNil(t, m, "README.md has no newcomer-flow block")
	return string(m[1])
}

// TestREADMENewcomerFlow (issue 12 §4) runs the README's first steps as
// written, in bash, against a running demo, with the aws cli a new user on
// Debian has (/usr/bin/aws, 2.9, which ignores AWS_ENDPOINT_URL_*):
// gatehouse login → gatehouse roles → eval "$(gatehouse env)" → bare
// `aws s3 ls` lists the demo bucket, the shared/ listing and
// get-caller-identity work, and alice decodes her own denial with
// `aws sts decode-authorization-message`. Nothing but the server URL (the
// demo here listens on a free port, not 8080) and a fresh home comes from
// the test.
func TestREADMENewcomerFlow(t *testing.T) {
	requireAWSCLI(t)
	p := startDemo(t)
	home := t.TempDir()
	cmd := exec.Command("bash", "-e", "-c", readmeFlow(t))
	cmd.Dir = t.TempDir()
	cmd.Env = append(envWithout("AWS_"),
		"HOME="+home, "GATEHOUSE_CONFIG_DIR="+filepath.Join(home, ".config", "gatehouse"),
		"GATEHOUSE_SERVER="+p.api, "GATEHOUSE_PROFILE=", "GATEHOUSE_TOKEN=",
		"PATH="+filepath.Dir(binPath)+":/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED=true")
	b, err := cmd.CombinedOutput()
	out := string(b)
	require.NoError(t, err, out)
	require.Contains(t, out, "analyst", "gatehouse roles")
	require.Regexp(t, `(?m)^\S+ \S+ demo$`, out, "bare aws s3 ls lists the demo bucket")
	require.Contains(t, out, "sales.csv")
	require.Contains(t, out, "assumed-role/analyst/alice")
	require.Contains(t, out, "DecodedMessage")
	require.Contains(t, out, `s3:GetObject`)
	require.Contains(t, out, "not entitled to role arn:aws:iam::000000000000:role/hr-reader")
	require.False(t, strings.Contains(out, "AccessDenied) when calling the ListBuckets"), out)
	p.stop(t)
}

// TestDemoPromisesHold (issue 12 §4) checks what the demo tells a new user
// against what it does: bob has a usable home/bob/ (the banner advertises
// home/<user>/ for everyone); the first-run warning and the banner agree on
// what to do with the bootstrap token file; stopping the demo says what
// happened; and `gatehouse audit verify|search` without --data-dir read
// the log the demo wrote, from the directory the demo ran in.
func TestDemoPromisesHold(t *testing.T) {
	awsCLI := requireAWSCLI(t)
	p := startDemo(t)
	bob := demoAWSCreds(t, p, "bob", "bob-demo-pw", "hr-reader")
	s3 := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", p.s3}, args...)...)
		cmd.Env = append(envWithout("AWS_"), bob...)
		cmd.Stdin = strings.NewReader(stdin)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	out, err := s3("", "s3", "cp", "s3://demo/home/bob/notes.md", "-")
	require.NoError(t, err, "bob reads his seeded home: %s", out)
	out, err = s3("bob was here\n", "s3", "cp", "-", "s3://demo/home/bob/hello.txt")
	require.NoError(t, err, "bob writes his home: %s", out)
	out, err = s3("", "s3", "ls", "s3://demo/home/bob/")
	require.NoError(t, err, out)
	require.Contains(t, out, "hello.txt")
	out, err = s3("", "s3", "cp", "s3://demo/home/alice/notes.md", "-")
	require.Error(t, err, "and nobody else's: %s", out)

	p.stop(t)
	logs := p.stderr.String()
	require.NotContains(t, logs, "then delete the file", "the demo keeps the token file to renew it")
	require.Contains(t, logs, "gatehouse stopped: API, admin and S3 listeners closed")
	require.Contains(t, logs, "audit log flushed and closed")

	// `gatehouse audit` from the directory where `gatehouse demo` ran.
	dir := t.TempDir()
	require.NoError(t, os.Symlink(p.dataDir, filepath.Join(dir, "gatehouse-demo")))
	for _, args := range [][]string{{"audit", "verify"}, {"audit", "search", "--action", "s3"}} {
		cmd := exec.Command(binPath, args...)
		cmd.Dir = dir
		cmd.Env = append(envWithout("GATEHOUSE_"), "GATEHOUSE_MASTER_KEY=")
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "%v: %s", args, b)
		require.Contains(t, string(b), "gatehouse-demo", "says which log it read")
	}
}
