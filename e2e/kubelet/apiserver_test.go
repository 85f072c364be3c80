package kubelet

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// apiServer fakes the two calls the kubelet makes to the Kubernetes API
// for a credential provider's tokenAttributes: GET of the pod's
// ServiceAccount and POST of a TokenRequest for it. It issues tokens as
// the cluster's issuer and, for service accounts that the cluster's
// workload identity pool trusts, registers them with the fake STS.
type apiServer struct {
	t      *testing.T
	srv    *httptest.Server
	google *fake.Google

	mu       sync.Mutex
	accounts map[string]*corev1.ServiceAccount // "namespace/name"
	trusted  map[string]bool                   // "namespace/name" STS verifies
	forge    map[string]string                 // "namespace/name" -> token whose claims the next token copies
	issued   []string                          // every token handed out
	gets     int
	requests int
}

// newAPIServer starts the fake on 127.0.0.1; t.Cleanup stops it.
func newAPIServer(t *testing.T, g *fake.Google) *apiServer {
	a := &apiServer{t: t, google: g, accounts: map[string]*corev1.ServiceAccount{}, trusted: map[string]bool{}, forge: map[string]string{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.handle))
	t.Cleanup(a.srv.Close)
	return a
}

// addServiceAccount creates namespace/name with annotations; trusted says
// whether STS verifies its tokens (the pool trusts the cluster's issuer).
func (a *apiServer) addServiceAccount(namespace, name string, annotations map[string]string, trusted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := namespace + "/" + name
	a.accounts[key] = &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID(namespace + "-" + name + "-uid"), Annotations: annotations},
	}
	a.trusted[key] = trusted
}

// forgeNext makes the next token for namespace/name a forgery of like: the
// same claims, another signature, which STS does not verify.
func (a *apiServer) forgeNext(namespace, name, like string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.forge[namespace+"/"+name] = like
}

// counts reports the ServiceAccount GETs and TokenRequest POSTs received.
func (a *apiServer) counts() (gets, tokenRequests int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gets, a.requests
}

// tokens is every service-account token handed out so far.
func (a *apiServer) tokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.issued...)
}

func (a *apiServer) handle(w http.ResponseWriter, r *http.Request) {
	// /api/v1/namespaces/NS/serviceaccounts/NAME[/token]
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 6 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces" || parts[4] != "serviceaccounts" {
		a.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
		return
	}
	key := parts[3] + "/" + parts[5]
	a.mu.Lock()
	sa := a.accounts[key]
	a.mu.Unlock()
	switch {
	case len(parts) == 6 && r.Method == http.MethodGet:
		a.mu.Lock()
		a.gets++
		a.mu.Unlock()
		if sa == nil {
			a.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, `serviceaccounts "`+parts[5]+`" not found`)
			return
		}
		a.write(w, http.StatusOK, sa)
	case len(parts) == 7 && parts[6] == "token" && r.Method == http.MethodPost:
		a.tokenRequest(w, r, key, sa)
	default:
		a.status(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, r.Method+" "+r.URL.Path)
	}
}

// tokenRequest answers a TokenRequest as the API server does, after the
// checks the kubelet's request must pass: the service account's UID as a
// precondition, one audience, bound to a pod.
func (a *apiServer) tokenRequest(w http.ResponseWriter, r *http.Request, key string, sa *corev1.ServiceAccount) {
	a.mu.Lock()
	a.requests++
	a.mu.Unlock()
	if sa == nil {
		a.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, `serviceaccounts "`+key+`" not found`)
		return
	}
	// client-go sends protobuf (the kubelet's client), or JSON.
	body, err := io.ReadAll(r.Body)
	var tr authenticationv1.TokenRequest
	if err == nil {
		_, _, err = scheme.Codecs.UniversalDeserializer().Decode(body, nil, &tr)
	}
	if err != nil {
		a.status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "decoding the TokenRequest: "+err.Error())
		return
	}
	ref := tr.Spec.BoundObjectRef
	if tr.UID != sa.UID || len(tr.Spec.Audiences) != 1 || ref == nil || ref.Kind != "Pod" || ref.Name == "" || ref.UID == "" {
		a.status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "unexpected TokenRequest")
		a.t.Errorf("kubelet's TokenRequest for %s: %+v", key, tr)
		return
	}
	if tr.Spec.ExpirationSeconds == nil {
		ttl := int64(3600)
		tr.Spec.ExpirationSeconds = &ttl
	}
	exp := time.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second)
	tok := fake.ServiceAccountToken(issuer, sa.Namespace, sa.Name, string(sa.UID), tr.Spec.Audiences[0], exp)
	a.mu.Lock()
	if like, ok := a.forge[key]; ok {
		delete(a.forge, key)
		tok = like[:strings.LastIndexByte(like, '.')+1] + strings.Repeat("A", len(like)-strings.LastIndexByte(like, '.')-1)
	} else if a.trusted[key] {
		a.google.TrustSubjectToken(wifProvider, tok)
	}
	a.issued = append(a.issued, tok)
	a.mu.Unlock()
	tr.TypeMeta = metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenRequest"}
	tr.Status = authenticationv1.TokenRequestStatus{Token: tok, ExpirationTimestamp: metav1.NewTime(exp)}
	a.write(w, http.StatusCreated, &tr)
}

func (a *apiServer) write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *apiServer) status(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	a.write(w, code, &metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code),
	})
}
