package main

// End-to-end tests: build the real binary, run `gatehouse demo` as a child
// process on loopback, drive it with curl (a real SCIM/HTTP client) and the
// binary's own CLI, stop it with SIGTERM and verify the audit chain offline.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/testwait"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-bin")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "gatehouse")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build gatehouse: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireAWSCLI returns the path of Debian's aws cli, which CI installs: a
// missing one fails the test in CI and skips it elsewhere.
func requireAWSCLI(t *testing.T) string {
	t.Helper()
	const awsCLI = "/usr/bin/aws"
	if _, err := os.Stat(awsCLI); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", awsCLI, err)
		}
		t.Skip("aws cli not installed")
	}
	return awsCLI
}

// demoProc is a running `gatehouse demo` child.
type demoProc struct {
	cmd      *exec.Cmd
	api      string
	admin    string
	s3       string
	dataDir  string
	token    string
	stderr   *bytes.Buffer
	exitedCh chan error
}

func startDemo(t *testing.T, extra ...string) *demoProc {
	t.Helper()
	return startDemoEnv(t, nil, extra...)
}

// startDemoEnv is startDemo with extra environment variables.
func startDemoEnv(t *testing.T, env []string, extra ...string) *demoProc {
	t.Helper()
	dataDir := t.TempDir()
	args := append([]string{"demo", "--data-dir", dataDir, "--api-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--set", "s3.listen=127.0.0.1:0"}, extra...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(append(os.Environ(), "GATEHOUSE_MASTER_KEY="), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	p := &demoProc{cmd: cmd, dataDir: dataDir, stderr: &stderr, exitedCh: make(chan error, 1)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exitedCh
		}
	})
	p.waitURLs(t, stdout)
	tok, err := os.ReadFile(filepath.Join(dataDir, "bootstrap-admin.token"))
	require.NoError(t, err, "bootstrap token file")
	p.token = strings.TrimSpace(string(tok))
	require.NotEmpty(t, p.token)
	return p
}

// waitURLs reads the demo banner for the API and admin URLs, then drains
// the rest of stdout in the background.
func (p *demoProc) waitURLs(t *testing.T, stdout io.Reader) {
	t.Helper()
	cmd, stderr := p.cmd, p.stderr
	apiRe := regexp.MustCompile(`^\s+API\s+(http://\S+)`)
	adminRe := regexp.MustCompile(`^\s+admin\s+(http://\S+)`)
	s3Re := regexp.MustCompile(`^\s+S3\s+(http://\S+)`)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.exitedCh <- cmd.Wait()
	}()
	// However long a loaded machine takes to start it; only a hang fails.
	hung := testwait.Hung(t)
	for p.api == "" || p.admin == "" || p.s3 == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited before printing its URLs; stderr:\n%s", stderr.String())
			}
			if m := apiRe.FindStringSubmatch(l); m != nil {
				p.api = m[1]
			}
			if m := adminRe.FindStringSubmatch(l); m != nil {
				p.admin = m[1]
			}
			if m := s3Re.FindStringSubmatch(l); m != nil {
				p.s3 = m[1]
			}
		case <-hung:
			t.Fatalf("demo never printed its URLs; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
}

func (p *demoProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.exitedCh:
		require.NoError(t, err, "demo exit after SIGTERM; stderr:\n%s", p.stderr.String())
	case <-testwait.Hung(t): // draining may take shutdown_timeout, or longer under load
		t.Fatalf("demo never stopped after SIGTERM; stderr:\n%s", p.stderr.String())
	}
}

// curl runs the real curl client and returns status code and body.
func curl(t *testing.T, args ...string) (int, []byte) {
	t.Helper()
	full := append([]string{"-sS", "-o", "-", "-w", "\n%{http_code}"}, args...)
	out, err := exec.Command("curl", full...).Output()
	require.NoError(t, err, "curl %v", args)
	i := bytes.LastIndexByte(out, '\n')
	var code int
	_, err = fmt.Sscanf(string(out[i+1:]), "%d", &code)
	require.NoError(t, err)
	return code, out[:i]
}

func jsonField(t *testing.T, body []byte, path ...string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(body, &v), "body: %s", body)
	for _, k := range path {
		m, ok := v.(map[string]any)
		require.True(t, ok, "no object at %q in %s", k, body)
		v = m[k]
	}
	return v
}

func runCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestDemoSCIMFlowWithCurlAndAuditVerify(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is required (installed by .ci/run)")
	}
	p := startDemo(t)
	auth := "Authorization: Bearer " + p.token
	scimCT := "Content-Type: application/scim+json"

	// Health and metrics on the admin listener.
	code, _ := curl(t, p.admin+"/livez")
	require.Equal(t, 200, code)
	code, _ = curl(t, p.admin+"/readyz")
	require.Equal(t, 200, code)
	var body []byte

	// Alice logs in with her demo password and gets a session.
	code, body = curl(t, "-X", "POST", p.api+"/api/v1/login", "-H", "Content-Type: application/json",
		"-d", `{"username":"alice","password":"alice-demo-pw"}`)
	require.Equal(t, 200, code, "%s", body)
	aliceTok := jsonField(t, body, "token").(string)
	code, body = curl(t, p.api+"/api/v1/whoami", "-H", "Authorization: Bearer "+aliceTok)
	require.Equal(t, 200, code, "%s", body)
	require.Contains(t, string(body), "alice")

	// A wrong password is refused without saying which part was wrong.
	code, body = curl(t, "-X", "POST", p.api+"/api/v1/login", "-H", "Content-Type: application/json",
		"-d", `{"username":"alice","password":"nope"}`)
	require.Equal(t, 401, code, "%s", body)

	// SCIM: create a user.
	code, body = curl(t, "-X", "POST", p.api+"/scim/v2/Users", "-H", auth, "-H", scimCT, "-d",
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dave@example.com","name":{"givenName":"Dave","familyName":"Doe"},"emails":[{"value":"dave@example.com","type":"work","primary":true}],"active":true}`)
	require.Equal(t, 201, code, "%s", body)
	daveID := jsonField(t, body, "id").(string)

	// Duplicate userName: SCIM uniqueness error, nothing created.
	code, body = curl(t, "-X", "POST", p.api+"/scim/v2/Users", "-H", auth, "-H", scimCT, "-d",
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"DAVE@example.com"}`)
	require.Equal(t, 409, code, "%s", body)
	require.Equal(t, "uniqueness", jsonField(t, body, "scimType"))

	// Find the analysts group with a filter and add dave (Okta/Entra PATCH shape).
	code, body = curl(t, "-G", p.api+"/scim/v2/Groups", "-H", auth, "--data-urlencode", `filter=displayName eq "analysts"`)
	require.Equal(t, 200, code, "%s", body)
	res := jsonField(t, body, "Resources").([]any)
	require.Len(t, res, 1)
	groupID := res[0].(map[string]any)["id"].(string)
	code, body = curl(t, "-X", "PATCH", p.api+"/scim/v2/Groups/"+groupID, "-H", auth, "-H", scimCT, "-d",
		fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, daveID))
	require.Contains(t, []int{200, 204}, code, "%s", body)
	code, body = curl(t, p.api+"/scim/v2/Users/"+daveID, "-H", auth)
	require.Equal(t, 200, code)
	require.Contains(t, string(body), "analysts")

	// A malformed filter is a SCIM invalidFilter error.
	code, body = curl(t, "-G", p.api+"/scim/v2/Users", "-H", auth, "--data-urlencode", `filter=userName eq`)
	require.Equal(t, 400, code, "%s", body)
	require.Equal(t, "invalidFilter", jsonField(t, body, "scimType"))

	// Deactivate alice through SCIM: her live session stops working at once.
	code, body = curl(t, "-G", p.api+"/scim/v2/Users", "-H", auth, "--data-urlencode", `filter=userName eq "alice"`)
	require.Equal(t, 200, code, "%s", body)
	aliceID := jsonField(t, body, "Resources").([]any)[0].(map[string]any)["id"].(string)
	code, body = curl(t, "-X", "PATCH", p.api+"/scim/v2/Users/"+aliceID, "-H", auth, "-H", scimCT, "-d",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
	require.Contains(t, []int{200, 204}, code, "%s", body)
	code, body = curl(t, p.api+"/api/v1/whoami", "-H", "Authorization: Bearer "+aliceTok)
	require.Equal(t, 401, code, "disabled user's session must stop working: %s", body)
	code, _ = curl(t, "-X", "POST", p.api+"/api/v1/login", "-H", "Content-Type: application/json",
		"-d", `{"username":"alice","password":"alice-demo-pw"}`)
	require.Equal(t, 401, code, "disabled user cannot log in")

	// Metrics count what the API served (bounded labels: no principals, no ids).
	code, body = curl(t, p.admin+"/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, string(body), `gatehouse_http_requests_total{code="2xx",frontend="scim",method="PATCH"}`)
	require.NotContains(t, string(body), daveID)

	// The admin CLI talks to the running server.
	env := []string{"GATEHOUSE_SERVER=" + p.api, "GATEHOUSE_TOKEN=" + p.token}
	out, err := runCLI(t, env, "admin", "users", "list")
	require.NoError(t, err, out)
	require.Contains(t, out, "dave@example.com")
	require.Contains(t, out, "carol")

	p.stop(t)

	// The audit chain verifies offline and holds the SCIM changes and logins.
	out, err = runCLI(t, nil, "audit", "verify", "--data-dir", p.dataDir)
	require.NoError(t, err, out)
	require.Contains(t, out, "OK")
	out, err = runCLI(t, nil, "audit", "export", "--data-dir", p.dataDir)
	require.NoError(t, err, out)
	for _, want := range []string{"scim.", "dave@example.com", `"deny"`, "server.stop"} {
		require.Contains(t, out, want)
	}

	// Hand-edit one record: verify must fail and name it.
	logFile := auditLogFile(t, p.dataDir)
	raw, err := os.ReadFile(logFile)
	require.NoError(t, err)
	lines := bytes.Split(raw, []byte("\n"))
	edited := -1
	for i, l := range lines {
		if bytes.Contains(l, []byte("dave@example.com")) {
			lines[i] = bytes.Replace(l, []byte("dave@example.com"), []byte("eve@example.com!"), 1)
			edited = i
			break
		}
	}
	require.GreaterOrEqual(t, edited, 0)
	require.NoError(t, os.WriteFile(logFile, bytes.Join(lines, []byte("\n")), 0o600))
	out, err = runCLI(t, nil, "audit", "verify", "--data-dir", p.dataDir)
	require.Error(t, err, "verify must fail on an edited record: %s", out)
	require.Regexp(t, fmt.Sprintf(`(line %d|seq )`, edited+1), out)
}

// auditLogFile finds the hash-chained log in the data dir's audit folder.
func auditLogFile(t *testing.T, dataDir string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "audit"))
	require.NoError(t, err)
	var best string
	var size int64
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(t, err)
		if !e.IsDir() && info.Size() > size {
			best, size = filepath.Join(dataDir, "audit", e.Name()), info.Size()
		}
	}
	require.NotEmpty(t, best)
	return best
}

func TestServeRejectsBadConfigListingEveryError(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("api:\n  listen: nowhere\naudit:\n  mode: whenever\n"), 0o600))
	cmd := exec.Command(binPath, "serve", "--config", cfgFile, "--set", "log.format=xml", "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.ExitCode())
	for _, want := range []string{"api.listen", "audit.mode", "log.format"} {
		require.Contains(t, string(out), want)
	}
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, nil, "version")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "gatehouse "), out)
}

// TestUnknownAPIRouteAndOversizedBody checks the REST error shape end to end.
func TestUnknownAPIRouteAndOversizedBody(t *testing.T) {
	p := startDemo(t)
	resp, err := http.Get(p.api + "/api/v1/no-such-thing")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode)
	require.NotEmpty(t, jsonField(t, body, "error", "request_id"))

	big := bytes.Repeat([]byte("x"), 2<<20)
	req, _ := http.NewRequest("POST", p.api+"/api/v1/users", bytes.NewReader(append([]byte(`{"userName":"`), append(big, []byte(`"}`)...)...)))
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 413, resp.StatusCode, "%s", body)
	require.Equal(t, "payload_too_large", jsonField(t, body, "error", "code"))
	p.stop(t)
}

// TestSIGKILLUnderLoadLosesNothingAcknowledged kills the real server with
// SIGKILL while SCIM writes (store + audit) are in flight, restarts it on the
// same data directory, and checks that the store opens, the audit chain
// verifies, and every write that was acknowledged (201) is present in both.
// TestSIGKILLUnderLoadLosesNothingAcknowledged kills the real binary under
// SCIM load, with the audit log at both durability levels: a process crash
// loses nothing acknowledged at fsync, nor at write, the default since issue
// 13 (the records are in the page cache before Emit returns).
func TestSIGKILLUnderLoadLosesNothingAcknowledged(t *testing.T) {
	for _, durability := range []string{"fsync", "write"} {
		t.Run(durability, func(t *testing.T) { sigkillUnderLoad(t, "audit.durability="+durability) })
	}
}

func sigkillUnderLoad(t *testing.T, auditSetting string) {
	p := startDemo(t, "--set", auditSetting)
	auth := "Bearer " + p.token
	var (
		acked   = make(chan string, 10000)
		stop    = make(chan struct{})
		writers = 4
		done    = make(chan struct{}, writers)
	)
	// No client timeout: a slow answer is still an answer, and the kill
	// below ends every request in flight.
	client := &http.Client{}
	for w := 0; w < writers; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("load-%d-%d@example.com", w, i)
				body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"active":true}`, name)
				req, _ := http.NewRequest("POST", p.api+"/scim/v2/Users", strings.NewReader(body))
				req.Header.Set("Authorization", auth)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := client.Do(req)
				if err != nil {
					return // the server died under us
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					acked <- name
				}
			}
		}(w)
	}
	// Let 150 writes be acknowledged (counted as they are, however slow the
	// machine), then kill without warning.
	var names []string
	hung := testwait.Hung(t) // a hung server, not a slow one
	for len(names) < 150 {
		select {
		case n := <-acked:
			names = append(names, n)
		case <-hung:
			t.Fatalf("only %d writes acknowledged before the test binary's deadline; stderr:\n%s", len(names), p.stderr.String())
		}
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.exitedCh
	close(stop)
	for w := 0; w < writers; w++ {
		<-done
	}
	close(acked)
	for n := range acked {
		names = append(names, n)
	}
	require.GreaterOrEqual(t, len(names), 50, "too few writes acknowledged before the kill")
	t.Logf("%d SCIM creates acknowledged before SIGKILL", len(names))

	// Restart on the same data directory: the store opens, the log recovers.
	cmd := exec.Command(binPath, "demo", "--data-dir", p.dataDir, "--api-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--set", "s3.listen=127.0.0.1:0", "--set", auditSetting)
	p2 := restartDemo(t, cmd, p.dataDir)
	for _, n := range names {
		code, body := curl(t, "-G", p2.api+"/scim/v2/Users", "-H", "Authorization: "+auth,
			"--data-urlencode", fmt.Sprintf(`filter=userName eq %q`, n))
		require.Equal(t, 200, code, "%s", body)
		require.EqualValues(t, 1, jsonField(t, body, "totalResults"), "acknowledged user %s lost", n)
	}
	p2.stop(t)

	out, err := runCLI(t, nil, "audit", "verify", "--data-dir", p.dataDir)
	require.NoError(t, err, out)
	exported, err := runCLI(t, nil, "audit", "export", "--data-dir", p.dataDir, "--action", "scim.user.create")
	require.NoError(t, err)
	for _, n := range names {
		require.Contains(t, exported, n, "acknowledged create of %s missing from the audit log", n)
	}
}

// restartDemo starts an already-built command on an existing data dir and
// waits for its URLs, reusing startDemo's output parsing.
func restartDemo(t *testing.T, cmd *exec.Cmd, dataDir string) *demoProc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	p := &demoProc{cmd: cmd, dataDir: dataDir, stderr: &stderr, exitedCh: make(chan error, 1)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exitedCh
		}
	})
	p.waitURLs(t, stdout)
	return p
}

// TestTwoReplicasShareOnePostgresStore runs two servers on one PostgreSQL
// schema: the first bootstraps, both serve the same directory, and a user
// disabled through one replica is cut off on the other at its next request.
//
// It also proves issue 12 §2 (replicas' audit logs): each replica keeps its
// own chain and key and verifies with it; `audit search` over both follows
// one client request id across replicas, without either adopting it as its
// own; and a replica that signs with another's key (a cloned data directory)
// is refused by name.
func TestTwoReplicasShareOnePostgresStore(t *testing.T) {
	base := os.Getenv("GATEHOUSE_TEST_POSTGRES_DSN")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GATEHOUSE_TEST_POSTGRES_DSN must be set in CI")
		}
		t.Skip("GATEHOUSE_TEST_POSTGRES_DSN not set")
	}
	dsn := freshPGSchema(t, base)
	pg := []string{"--set", "store.driver=postgres", "--set", "store.dsn=" + dsn}
	// Replicas share the store and therefore the master key that seals the
	// keys kept in it (STS keyring, OIDC issuer key).
	var mk [32]byte
	_, _ = rand.Read(mk[:])
	keyEnv := []string{"GATEHOUSE_MASTER_KEY=" + base64.StdEncoding.EncodeToString(mk[:])}
	a := startDemoEnv(t, keyEnv, pg...)
	// Replica b has its own data dir (its own audit log) and no bootstrap token:
	// the bootstrap happened once, on a.
	dataB := t.TempDir()
	cmd := exec.Command(binPath, append([]string{"demo", "--data-dir", dataB, "--api-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--set", "s3.listen=127.0.0.1:0"}, pg...)...)
	cmd.Env = append(os.Environ(), keyEnv...)
	b := restartDemo(t, cmd, dataB)
	_, err := os.Stat(filepath.Join(dataB, "bootstrap-admin.token"))
	require.True(t, os.IsNotExist(err), "second replica must not bootstrap again")

	const trace = "client-trace-42" // one client request id, sent to both replicas
	code, body := curl(t, "-X", "POST", b.api+"/api/v1/login", "-H", "Content-Type: application/json",
		"-H", "X-Request-Id: "+trace, "-d", `{"username":"bob","password":"bob-demo-pw"}`)
	require.Equal(t, 200, code, "%s", body)
	bobTok := jsonField(t, body, "token").(string)
	code, _ = curl(t, b.api+"/api/v1/whoami", "-H", "Authorization: Bearer "+bobTok)
	require.Equal(t, 200, code)
	// The session minted on b works on a too: the store is shared.
	code, _ = curl(t, a.api+"/api/v1/whoami", "-H", "Authorization: Bearer "+bobTok)
	require.Equal(t, 200, code)

	code, body = curl(t, "-G", a.api+"/scim/v2/Users", "-H", "Authorization: Bearer "+a.token, "--data-urlencode", `filter=userName eq "bob"`)
	require.Equal(t, 200, code, "%s", body)
	bobID := jsonField(t, body, "Resources").([]any)[0].(map[string]any)["id"].(string)
	code, body = curl(t, "-X", "PATCH", a.api+"/scim/v2/Users/"+bobID, "-H", "Authorization: Bearer "+a.token,
		"-H", "X-Request-Id: "+trace, "-H", "Content-Type: application/scim+json", "-d",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	require.Contains(t, []int{200, 204}, code, "%s", body)
	code, _ = curl(t, b.api+"/api/v1/whoami", "-H", "Authorization: Bearer "+bobTok)
	require.Equal(t, 401, code, "disabled on replica a, must fail on replica b at once")

	a.stop(t)
	b.stop(t)
	for _, dir := range []string{a.dataDir, dataB} {
		out, err := runCLI(t, nil, "audit", "verify", "--data-dir", dir)
		require.NoError(t, err, out)
	}
	assertReplicaAudit(t, a.dataDir, dataB, trace)
}

// assertReplicaAudit checks the audit logs of two replicas (data dirs da and
// db) read together: both verify, each with its own key; a search for the
// client request id trace finds the login on db and the SCIM change on da,
// each under an id of the replica's own; and a clone of da's audit directory
// is refused as a replica signing with another's key.
func assertReplicaAudit(t *testing.T, da, db, trace string) {
	t.Helper()
	out, err := runCLI(t, nil, "audit", "verify", "--data-dir", da, "--data-dir", db, "--json")
	require.NoError(t, err, out)
	var reps []struct {
		Replica string `json:"replica"`
		Report  struct {
			KeyID string `json:"keyId"`
		} `json:"report"`
	}
	require.NoError(t, json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &reps), out)
	require.Len(t, reps, 2)
	require.NotEqual(t, reps[0].Report.KeyID, reps[1].Report.KeyID, "each replica signs with its own key")

	out, err = runCLI(t, nil, "audit", "search", "--data-dir", da+","+db, "--request-id", trace, "--json")
	require.NoError(t, err, out)
	byReplica := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // the CLI's own notes
		}
		var r struct {
			Replica string `json:"replica"`
			Event   struct {
				Action          string `json:"action"`
				RequestID       string `json:"requestId"`
				ClientRequestID string `json:"clientRequestId"`
			} `json:"event"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		require.Equal(t, trace, r.Event.ClientRequestID)
		require.NotEqual(t, trace, r.Event.RequestID, "a client's request id is never adopted")
		require.NotEmpty(t, r.Event.RequestID)
		byReplica[r.Replica] = append(byReplica[r.Replica], r.Event.Action)
	}
	require.Contains(t, byReplica[filepath.Base(db)], "identity.login", out)
	require.Contains(t, byReplica[filepath.Base(da)], "scim.user.disable", out)

	// Attack: a third "replica" started from a copy of da's data directory
	// signs with da's key, so its records could pass for da's.
	clone := filepath.Join(t.TempDir(), "clone")
	require.NoError(t, os.CopyFS(clone, os.DirFS(filepath.Join(da, "audit"))))
	out, err = runCLI(t, nil, "audit", "verify", "--data-dir", da, "--data-dir", db, "--data-dir", clone)
	require.Error(t, err, out)
	require.Contains(t, out, "signs with the key of replica "+filepath.Base(da))
	require.Contains(t, out, "FAILED: replica(s) "+clone)
}

// freshPGSchema creates a throwaway schema and returns a DSN whose
// search_path points at it.
func freshPGSchema(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "gatehouse_e2e_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestDemoPassthroughAndSCIMRevocation is the passthrough flow of the demo
// on the real binary: log in, pick a role, use the credentials with the real
// aws cli; then deactivate the user through SCIM and require their live
// credentials to stop working at once on this replica.
func TestDemoPassthroughAndSCIMRevocation(t *testing.T) {
	awsCLI := requireAWSCLI(t)
	p := startDemo(t)
	cfgDir := t.TempDir()
	ghEnv := []string{"GATEHOUSE_CONFIG_DIR=" + cfgDir, "GATEHOUSE_SERVER=" + p.api, "GATEHOUSE_PROFILE=", "GATEHOUSE_TOKEN="}

	login := exec.Command(binPath, "login", "--username", "alice", "--password-stdin")
	login.Env = append(os.Environ(), ghEnv...)
	login.Stdin = strings.NewReader("alice-demo-pw\n")
	out, err := login.CombinedOutput()
	require.NoError(t, err, "%s", out)

	out2, err := runCLI(t, ghEnv, "roles")
	require.NoError(t, err, out2)
	require.Contains(t, out2, "analyst")
	out2, err = runCLI(t, ghEnv, "assume-role", "analyst")
	require.NoError(t, err, out2)

	// credential_process, the way a user configures the aws cli.
	awsDir := t.TempDir()
	awsConfig := filepath.Join(awsDir, "config")
	require.NoError(t, os.WriteFile(awsConfig, []byte(fmt.Sprintf(
		"[default]\nregion = us-east-1\ncredential_process = %s credential-process\n", binPath)), 0o600))
	awsEnv := append(append([]string{}, ghEnv...),
		"AWS_CONFIG_FILE="+awsConfig, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(awsDir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true")
	callerIdentity := func() (string, error) {
		cmd := exec.Command(awsCLI, "sts", "get-caller-identity", "--endpoint-url", p.api+"/sts", "--output", "json")
		cmd.Env = append(envWithout("AWS_"), awsEnv...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	ident, err := callerIdentity()
	require.NoError(t, err, ident)
	require.Contains(t, ident, "assumed-role/analyst/alice")

	// Deactivate alice through SCIM, as an IdP would.
	code, body := curl(t, "-G", p.api+"/scim/v2/Users", "-H", "Authorization: Bearer "+p.token,
		"--data-urlencode", `filter=userName eq "alice"`)
	require.Equal(t, 200, code, "%s", body)
	aliceID := jsonField(t, body, "Resources").([]any)[0].(map[string]any)["id"].(string)
	code, body = curl(t, "-X", "PATCH", p.api+"/scim/v2/Users/"+aliceID, "-H", "Authorization: Bearer "+p.token,
		"-H", "Content-Type: application/scim+json", "-d",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
	require.Contains(t, []int{200, 204}, code, "%s", body)

	// The replica that disabled alice revokes her credentials before it
	// answers the PATCH: the first call made after that, however late a
	// loaded machine starts it, is refused (issue 12 §5: no time window;
	// other replicas follow once their caches lapse, which internal/sts and
	// internal/sts/credentials prove with an injected clock).
	last, err := callerIdentity()
	require.Error(t, err, "the cached credentials (credential_process) still work after the SCIM deactivation: %s", last)
	require.Regexp(t, `InvalidClientTokenId|ExpiredToken|AccessDenied|credential_process|Error`, last)
	p.stop(t)
}

// envWithout returns the process environment minus variables with prefix.
func envWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// TestDemoS3GatewayHomeDirsAndMount drives the demo's S3 endpoint with the
// real aws cli and credentials from `gatehouse env`: alice (analyst) reads
// shared/, owns home/alice/, cannot touch carol's home or hr/; bob, once in
// the analysts group too, reads hr/ through the mount (he is entitled to
// hr-reader) while holding the analyst role. Every access and denial is in
// the audit log with the end user as source identity.
func TestDemoS3GatewayHomeDirsAndMount(t *testing.T) {
	awsCLI := requireAWSCLI(t)
	p := startDemo(t)

	credsFor := func(user, pw, role string) []string {
		cfgDir := t.TempDir()
		env := []string{"GATEHOUSE_CONFIG_DIR=" + cfgDir, "GATEHOUSE_SERVER=" + p.api, "GATEHOUSE_PROFILE=", "GATEHOUSE_TOKEN="}
		login := exec.Command(binPath, "login", "--username", user, "--password-stdin")
		login.Env = append(os.Environ(), env...)
		login.Stdin = strings.NewReader(pw + "\n")
		out, err := login.CombinedOutput()
		require.NoError(t, err, "%s", out)
		exports, err := runCLI(t, env, "env", "--role", role)
		require.NoError(t, err, exports)
		var vars []string
		for _, line := range strings.Split(exports, "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
			if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "AWS_") {
				vars = append(vars, k+"="+strings.Trim(v, `'"`))
			}
		}
		dir := t.TempDir()
		return append(vars, "AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
			"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
			"AWS_EC2_METADATA_DISABLED=true", "AWS_DEFAULT_REGION=us-east-1")
	}
	s3 := func(env []string, stdin string, args ...string) (string, error) {
		cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", p.s3}, args...)...)
		cmd.Env = append(envWithout("AWS_"), env...)
		cmd.Stdin = strings.NewReader(stdin)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}

	alice := credsFor("alice", "alice-demo-pw", "analyst")
	out, err := s3(alice, "", "s3", "ls", "s3://demo/shared/")
	require.NoError(t, err, out)
	require.Contains(t, out, "sales.csv")
	out, err = s3(alice, "", "s3", "cp", "s3://demo/shared/sales.csv", "-")
	require.NoError(t, err, out)
	require.Contains(t, out, "EU,Q3,1200000")
	out, err = s3(alice, "hello from alice\n", "s3", "cp", "-", "s3://demo/home/alice/hello.txt")
	require.NoError(t, err, out)
	out, err = s3(alice, "", "s3", "cp", "s3://demo/home/alice/hello.txt", "-")
	require.NoError(t, err, out)
	require.Contains(t, out, "hello from alice")
	for _, denied := range [][]string{
		{"s3", "cp", "s3://demo/home/carol/notes.md", "-"},
		{"s3", "ls", "s3://demo/home/carol/"},
		{"s3", "cp", "s3://demo/hr/salaries.csv", "-"},
	} {
		out, err = s3(alice, "", denied...)
		require.Error(t, err, "alice must not: %v\n%s", denied, out)
		require.Regexp(t, `AccessDenied|\(403\)`, out, "%v", denied) // HEAD answers carry no body
	}
	// The denial carries a sealed explanation that only an admin can decode.
	out, err = s3(alice, "", "s3api", "get-object", "--bucket", "demo", "--key", "hr/salaries.csv", filepath.Join(t.TempDir(), "x"))
	require.Error(t, err, out)
	require.Contains(t, out, "Encoded authorization failure message: ghm1.")
	require.NotContains(t, out, "hr-reader", "the caller learns nothing from the message")
	decoded, err := runCLI(t, []string{"GATEHOUSE_SERVER=" + p.api, "GATEHOUSE_TOKEN=" + p.token}, "admin", "decode-authorization-message", out)
	require.NoError(t, err, decoded)
	require.Contains(t, decoded, "s3:GetObject on arn:aws:s3:::demo/hr/salaries.csv")
	require.Contains(t, decoded, "end user alice")
	require.Contains(t, decoded, "not entitled to role arn:aws:iam::000000000000:role/hr-reader")
	out, err = s3(alice, "x", "s3", "cp", "-", "s3://demo/home/carol/planted.txt")
	require.Error(t, err, out)
	require.Contains(t, out, "AccessDenied")

	// bob joins analysts (SCIM), takes the analyst role, and reads hr/ through the mount.
	code, body := curl(t, "-G", p.api+"/scim/v2/Groups", "-H", "Authorization: Bearer "+p.token,
		"--data-urlencode", `filter=displayName eq "analysts"`)
	require.Equal(t, 200, code, "%s", body)
	analysts := jsonField(t, body, "Resources").([]any)[0].(map[string]any)["id"].(string)
	code, body = curl(t, "-G", p.api+"/scim/v2/Users", "-H", "Authorization: Bearer "+p.token,
		"--data-urlencode", `filter=userName eq "bob"`)
	require.Equal(t, 200, code, "%s", body)
	bobID := jsonField(t, body, "Resources").([]any)[0].(map[string]any)["id"].(string)
	code, body = curl(t, "-X", "PATCH", p.api+"/scim/v2/Groups/"+analysts, "-H", "Authorization: Bearer "+p.token,
		"-H", "Content-Type: application/scim+json", "-d",
		fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, bobID))
	require.Contains(t, []int{200, 204}, code, "%s", body)
	bob := credsFor("bob", "bob-demo-pw", "analyst")
	out, err = s3(bob, "", "s3", "cp", "s3://demo/hr/salaries.csv", "-")
	require.NoError(t, err, "bob (analyst role, entitled to hr-reader) reads hr/ through the mount: %s", out)
	require.Contains(t, out, "alice,72000")
	out, err = s3(bob, "", "s3", "cp", "s3://demo/home/alice/hello.txt", "-")
	require.Error(t, err, "the mount does not open other prefixes: %s", out)

	p.stop(t)
	exported, err := runCLI(t, nil, "audit", "export", "--data-dir", p.dataDir, "--action", "s3")
	require.NoError(t, err)
	require.Contains(t, exported, `"sourceIdentity":"alice"`)
	require.Contains(t, exported, "AccessDenied")
	require.Contains(t, exported, "hr-reader", "the mount role is recorded")
	out, err = runCLI(t, nil, "audit", "verify", "--data-dir", p.dataDir)
	require.NoError(t, err, out)
}

// demoAWSCreds logs user in to the demo p and returns the environment of
// the aws cli holding temporary credentials for role.
func demoAWSCreds(t *testing.T, p *demoProc, user, pw, role string) []string {
	t.Helper()
	env := []string{"GATEHOUSE_CONFIG_DIR=" + t.TempDir(), "GATEHOUSE_SERVER=" + p.api, "GATEHOUSE_PROFILE=", "GATEHOUSE_TOKEN="}
	login := exec.Command(binPath, "login", "--username", user, "--password-stdin")
	login.Env = append(os.Environ(), env...)
	login.Stdin = strings.NewReader(pw + "\n")
	out, err := login.CombinedOutput()
	require.NoError(t, err, "%s", out)
	exports, err := runCLI(t, env, "env", "--role", role)
	require.NoError(t, err, exports)
	var vars []string
	for _, line := range strings.Split(exports, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "AWS_") {
			vars = append(vars, k+"="+strings.Trim(v, `'"`))
		}
	}
	dir := t.TempDir()
	return append(vars, "AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_DEFAULT_REGION=us-east-1")
}

// TestDemoAdminMountAppliesAndGoes: a mount an admin creates with
// `gatehouse admin mounts create` against a running demo serves the aws cli
// as soon as the command returns (entitled callers read through it, others
// are denied), and deleting it restores the previous access at once.
func TestDemoAdminMountAppliesAndGoes(t *testing.T) {
	awsCLI := requireAWSCLI(t)
	p := startDemo(t)
	s3 := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", p.s3}, args...)...)
		cmd.Env = append(envWithout("AWS_"), env...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	admin := func(args ...string) (string, error) {
		return runCLI(t, []string{"GATEHOUSE_CONFIG_DIR=" + t.TempDir(), "GATEHOUSE_PROFILE="},
			append(append([]string{"admin"}, args...), "--server", p.api, "--token", p.token)...)
	}
	// carol joins analysts, so she can hold the analyst role (shared/ and
	// home/carol/ only) and stays entitled to privacy-auditor (privacy
	// officers); alice is entitled to analyst only.
	out, err := admin("groups", "add-member", "analysts", "carol")
	require.NoError(t, err, out)
	carol := demoAWSCreds(t, p, "carol", "carol-demo-pw", "analyst")
	alice := demoAWSCreds(t, p, "alice", "alice-demo-pw", "analyst")
	const aliceNotes = "s3://demo/home/alice/notes.md"
	out, err = s3(carol, "s3", "cp", aliceNotes, "-")
	require.Error(t, err, "before the mount carol cannot read alice's home: %s", out)
	out, err = s3(alice, "s3", "cp", aliceNotes, "-")
	require.NoError(t, err, out)

	out, err = admin("mounts", "create", "--bucket", "demo", "--prefix", "home/alice/", "--role", "privacy-auditor", "--json")
	require.NoError(t, err, out)
	id, _ := jsonField(t, []byte(out), "id").(string)
	require.NotEmpty(t, id, out)
	// The replica that made the change serves it at once: the API reloads
	// the mount table before it answers, so no waiting is needed or allowed.
	out, err = s3(carol, "s3", "cp", aliceNotes, "-")
	require.NoError(t, err, "carol cannot read through the new mount: %s", out)
	require.Contains(t, out, "alice's private notes")
	out, err = s3(alice, "s3", "cp", aliceNotes, "-")
	require.Error(t, err, "alice is not entitled to privacy-auditor: %s", out)
	require.Regexp(t, `AccessDenied|\(403\)`, out)
	out, err = admin("mounts", "list")
	require.NoError(t, err, out)
	require.Contains(t, out, "home/alice/")
	require.Contains(t, out, "hr/", "the demo's own mount is stored too")

	out, err = admin("mounts", "delete", id)
	require.NoError(t, err, out)
	out, err = s3(carol, "s3", "cp", aliceNotes, "-")
	require.Error(t, err, "carol kept reading after the mount was deleted: %s", out)
	require.Regexp(t, `AccessDenied|\(403\)`, out)
	out, err = s3(alice, "s3", "cp", aliceNotes, "-")
	require.NoError(t, err, "alice reads her home again: %s", out)

	p.stop(t)
	exported, err := runCLI(t, nil, "audit", "export", "--data-dir", p.dataDir)
	require.NoError(t, err)
	for _, code := range []string{"GH5010I", "GH5012I"} {
		require.Contains(t, exported, code)
	}
}
