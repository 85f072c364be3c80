package cmd

import (
	"context"
	"encoding/base64"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/trace"
)

// TracedHelper is h as docker calls it (get, store, erase, list), telling
// call what each action did: the host, the credential and token that
// served it, or why none did.
func TracedHelper(h *helper.Helper, call *trace.Call) credentials.Helper {
	call.Recorded(h.TraceLog)
	return &tracedHelper{h: h, call: call}
}

type tracedHelper struct {
	h    *helper.Helper
	call *trace.Call
}

func (t *tracedHelper) Get(serverURL string) (string, string, error) {
	a, err := t.h.Answer(t.call.Context(context.Background()), serverURL)
	t.call.Host(a.Host)
	if !a.Ours {
		t.call.Outcome(trace.NotOurs)
	}
	t.call.Credential(a.Credential, t.h.Bindings.Used(a.Host, a.Credential))
	t.call.Token(a.Token)
	if err != nil {
		return "", "", err
	}
	return helper.UsernameAccessToken, a.Token.AccessToken, nil
}

func (t *tracedHelper) Add(c *credentials.Credentials) error {
	if c != nil {
		host, ours := t.h.Policy.Allows(c.ServerURL)
		t.call.Host(host)
		if !ours && host != "" {
			t.call.Outcome(trace.NotOurs)
		}
		t.call.Secret(c.Secret)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if data, err := enc.DecodeString(c.Secret); err == nil {
				t.call.Secret(string(data))
			}
		}
	}
	return t.h.Add(c)
}

func (t *tracedHelper) Delete(serverURL string) error {
	if host, err := helper.ParseHost(serverURL); err == nil {
		t.call.Host(host)
		if _, ours := t.h.Policy.Allows(host); !ours {
			t.call.Outcome(trace.NotOurs)
		}
	}
	return t.h.Delete(serverURL)
}

func (t *tracedHelper) List() (map[string]string, error) {
	list, err := t.h.List()
	t.call.Attr("entries", len(list))
	return list, err
}
