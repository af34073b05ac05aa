package s3gw

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/s3name"
)

// FuzzParseXML: the request bodies the gateway parses (DeleteObjects,
// CompleteMultipartUpload) never panic, and a DOCTYPE is always refused.
func FuzzParseXML(f *testing.F) {
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object></Delete>`))
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><Delete><Object><Key>&a;</Key></Object></Delete>`))
	f.Add([]byte(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b</Key></Object></Delete>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d deleteRequest
		err := parseXML(data, &d)
		var c completeMultipartUpload
		err2 := parseXML(data, &c)
		if strings.Contains(strings.ToUpper(string(data[:min(len(data), 1024)])), "<!DOCTYPE") && (err == nil || err2 == nil) {
			t.Fatalf("DOCTYPE accepted")
		}
	})
}

// FuzzRoute: any request target either is refused or names a bucket and a
// key that pass validation; route never panics.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/data/a/b", "/data/../x", "/data/%2e%2e/x", "/", "/data?list-type=2&prefix=a", "/data/k?uploadId=1&partNumber=2",
		"/data/k?acl", "/Data/k", "/data//k", "/d\x00/k"} {
		f.Add(s, "PUT")
		f.Add(s, "GET")
	}
	g := &Gateway{o: Options{BaseDomain: "s3.test"}}
	f.Fuzz(func(t *testing.T, target, method string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		rq := &request{r: &http.Request{Method: method, URL: u, Host: "s3.test", Header: http.Header{}}}
		if g.route(rq) != nil {
			return
		}
		if rq.bucket != "" && s3name.Bucket(rq.bucket) != nil {
			t.Fatalf("bucket %q accepted", rq.bucket)
		}
		if rq.key != "" && s3name.Key(rq.key) != nil {
			t.Fatalf("key %q accepted", rq.key)
		}
		if strings.Contains(rq.key, "..") && strings.Contains("/"+rq.key+"/", "/../") {
			t.Fatalf("traversal key %q accepted", rq.key)
		}
	})
}
