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
	awsCLI := "/usr/bin/aws"
	if _, err := os.Stat(awsCLI); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", awsCLI, err)
		}
		t.Skip("aws cli not installed")
	}
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
