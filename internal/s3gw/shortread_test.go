package s3gw

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
)

// TestShortReadIsAudited proves issue 13, "the transfer ended short record
// is kept": a client reads the start of a large GetObject body and closes
// the connection. The failure record of the short transfer must reach the
// log although the request's context is cancelled by then. The emitter
// refuses events whose context is done, as audit.Log does, and the test
// waits for the request's own context to be cancelled before the record is
// taken (events, not time), so the old behaviour loses it every run.
func TestShortReadIsAudited(t *testing.T) {
	e := newEnv(t)
	const size = 48 << 20 // far more than the loopback socket buffers hold
	_, err := e.backend.PutObject(context.Background(), "data", "big", bytes.NewReader(make([]byte, size)), size, backend.Metadata{})
	require.NoError(t, err)

	reqCtx := make(chan context.Context, 1)
	served := make(chan struct{})
	gw := e.srv.Config.Handler
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqCtx <- r.Context()
		defer close(served)
		gw.ServeHTTP(w, r)
	})
	e.audit.setHook(func(ev audit.Event) {
		if ev.Action == "s3.GetObject" && ev.Code == audit.CodeS3Failed {
			<-(<-reqCtx).Done() // the client is gone and the server knows it
		}
	})

	c := e.creds("alice", roleARNs.admin, "")
	req := e.signedRequest(t, c, "GET", "/data/big", nil, nil, signOpts{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(t, err)
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "GET /data/big HTTP/1.1\r\nHost: %s\r\n", req.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	w.WriteString("\r\n")
	require.NoError(t, w.Flush())
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = io.CopyN(io.Discard, resp.Body, 1<<20)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	<-served

	var failed []audit.Event
	for _, ev := range e.audit.find("GetObject") {
		if ev.Code == audit.CodeS3Failed {
			failed = append(failed, ev)
		}
	}
	require.Len(t, failed, 1, "the short transfer is recorded")
	ct := failed[0].Details["cloudTrail"].(map[string]any)
	out := ct["additionalEventData"].(map[string]any)["bytesTransferredOut"].(float64)
	require.Less(t, out, float64(size), "the record says how much was sent")
}
