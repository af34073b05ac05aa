package scim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// serviceProviderConfig serves RFC 7643 §5.
func (c *call) serviceProviderConfig() {
	c.write(http.StatusOK, map[string]any{
		"schemas":          []string{URNSPConfig},
		"documentationUri": "https://github.com/gatehouse-dev/gatehouse/blob/main/docs/compat/scim.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "A gatehouse token of a principal holding the scim or admin privilege, sent as Authorization: Bearer <token>.",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     c.h.base + "/ServiceProviderConfig",
		},
	})
}

func (c *call) resourceTypeDoc(rt *resourceType) map[string]any {
	exts := []any{}
	for _, e := range rt.Extensions {
		exts = append(exts, map[string]any{"schema": e.ID, "required": false})
	}
	return map[string]any{
		"schemas":          []string{URNResourceType},
		"id":               rt.Name,
		"name":             rt.Name,
		"endpoint":         rt.Endpoint,
		"description":      rt.Core.Description,
		"schema":           rt.Core.ID,
		"schemaExtensions": exts,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     c.h.base + "/ResourceTypes/" + rt.Name,
		},
	}
}

// resourceTypes serves RFC 7644 §4 /ResourceTypes and /ResourceTypes/{name}.
func (c *call) resourceTypes(rest []string) {
	all := []*resourceType{userType, groupType}
	if len(rest) == 1 {
		for _, rt := range all {
			if strings.EqualFold(rest[0], rt.Name) {
				c.write(http.StatusOK, c.resourceTypeDoc(rt))
				return
			}
		}
		c.fail(newError(http.StatusNotFound, "", "no resource type %q", rest[0]))
		return
	}
	if c.r.URL.Query().Has("filter") {
		c.fail(newError(http.StatusForbidden, "", "filtering /ResourceTypes is not supported"))
		return
	}
	var list []any
	for _, rt := range all {
		list = append(list, c.resourceTypeDoc(rt))
	}
	c.writeList(list)
}

func (c *call) writeList(list []any) {
	c.write(http.StatusOK, map[string]any{
		"schemas":      []string{URNListResponse},
		"totalResults": len(list),
		"itemsPerPage": len(list),
		"startIndex":   1,
		"Resources":    list,
	})
}

func attributeDocs(attrs []*attribute) []any {
	out := []any{}
	for _, a := range attrs {
		if a.ignored {
			continue
		}
		d := map[string]any{
			"name":        a.Name,
			"type":        a.Type,
			"multiValued": a.MultiValued,
			"description": a.Description,
			"required":    a.Required,
			"caseExact":   a.CaseExact,
			"mutability":  a.Mutability,
			"returned":    a.Returned,
			"uniqueness":  a.Uniqueness,
		}
		if d["uniqueness"] == "" {
			d["uniqueness"] = "none"
		}
		if a.Type == typeComplex {
			d["subAttributes"] = attributeDocs(a.Sub)
		}
		if len(a.RefTypes) > 0 {
			d["referenceTypes"] = a.RefTypes
		}
		out = append(out, d)
	}
	return out
}

func (c *call) schemaDoc(s *schema) map[string]any {
	return map[string]any{
		"schemas":     []string{URNSchema},
		"id":          s.ID,
		"name":        s.Name,
		"description": s.Description,
		"attributes":  attributeDocs(s.Attributes),
		"meta": map[string]any{
			"resourceType": "Schema",
			"location":     c.h.base + "/Schemas/" + s.ID,
		},
	}
}

// schemas serves RFC 7644 §4 /Schemas and /Schemas/{id}.
func (c *call) schemas(rest []string) {
	if len(rest) == 1 {
		for _, s := range allSchemas {
			if strings.EqualFold(rest[0], s.ID) {
				c.write(http.StatusOK, c.schemaDoc(s))
				return
			}
		}
		c.fail(newError(http.StatusNotFound, "", "no schema %q", rest[0]))
		return
	}
	if c.r.URL.Query().Has("filter") {
		c.fail(newError(http.StatusForbidden, "", "filtering /Schemas is not supported"))
		return
	}
	var list []any
	for _, s := range allSchemas {
		list = append(list, c.schemaDoc(s))
	}
	c.writeList(list)
}
