package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/jsonpos"
)

// maxCredentialFileSize bounds what we read from a credential file; real
// ones are a few KiB.
const maxCredentialFileSize = 1 << 20

// keyFileSource is the key file recorded by `configure-docker --key-file`.
type keyFileSource struct {
	path   string
	scopes []string
}

func (s keyFileSource) Name() string {
	if s.path == "" {
		return "configure-docker --key-file"
	}
	return "key file " + s.path + " (configure-docker --key-file)"
}

func (s keyFileSource) Find(ctx context.Context) (*Credential, error) {
	if s.path == "" {
		return nil, NotFound("no key file recorded by configure-docker --key-file")
	}
	data, err := readCredentialFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key file %s recorded by configure-docker no longer exists: run configure-docker --key-file again or remove it", s.path)
	}
	if err != nil {
		return nil, err
	}
	return credentialFromJSON(ctx, s.Name(), data, s.scopes)
}

// readCredentialFile reads a credential JSON file. It refuses directories,
// FIFOs, devices and anything over maxCredentialFileSize with a clear error,
// and never blocks on a FIFO. A missing file yields an error matching
// fs.ErrNotExist.
func readCredentialFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	if err := checkCredentialFile(path, fi); err != nil {
		return nil, err
	}
	return openCredentialFile(path)
}

// openCredentialFile reads path with atomicfile.ReadTrustedFile, which
// never blocks and reads at most the limit: should the path have turned
// into a FIFO or grown after the caller's Stat, it is refused, not waited
// on. A file that a user other than you or root could change is refused
// too, as OpenSSH's StrictModes refuses such keys: whoever can write a
// credential file decides where its tokens, and the files it names, are
// sent.
func openCredentialFile(path string) ([]byte, error) {
	data, err := atomicfile.ReadTrustedFile(path, maxCredentialFileSize)
	var pe *fs.PathError
	var untrusted *atomicfile.UntrustedError
	switch {
	case errors.As(err, &untrusted):
		return nil, untrustedCredentialFile(untrusted)
	case errors.Is(err, atomicfile.ErrTooLarge):
		return nil, fmt.Errorf("%s is larger than 1 MiB; it is not a credential file", path)
	case errors.As(err, &pe):
		return nil, fileError(path, err)
	case err != nil:
		return nil, err // already names path
	}
	return data, nil
}

// untrustedCredentialFile says which credential file is refused, why, and
// what to do about it, in one line.
func untrustedCredentialFile(e *atomicfile.UntrustedError) error {
	fix := "run chmod go-w " + e.Path
	if strings.HasPrefix(e.Reason, "owned by") {
		fix = "use a copy you own (cp it, then chmod 600 the copy) or have it chowned to you"
	}
	return fmt.Errorf("refusing the credential file %s: it is %s, so another user could rewrite it to send your tokens or files elsewhere; %s", e.Path, e.Reason, fix)
}

func checkCredentialFile(path string, fi fs.FileInfo) error {
	switch mode := fi.Mode(); {
	case mode.IsDir():
		return fmt.Errorf("%s is a directory, not a credential file", path)
	case !mode.IsRegular():
		return fmt.Errorf("%s is not a regular file (%s); a credential file must be one", path, fileKind(mode))
	case fi.Size() > maxCredentialFileSize:
		return fmt.Errorf("%s is larger than 1 MiB; it is not a credential file", path)
	}
	return nil
}

func fileKind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	default:
		return "mode " + mode.String()
	}
}

func fileError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot read %s: %w", path, fs.ErrPermission)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("reading %s: %w", path, err)
}

// credentialJSON holds the fields of a Google credential JSON we look at
// ourselves; x/oauth2 parses the whole file again to mint.
type credentialJSON struct {
	Type             string          `json:"type"`
	ClientEmail      string          `json:"client_email"`
	PrivateKey       string          `json:"private_key"`
	ClientID         string          `json:"client_id"`
	ClientSecret     string          `json:"client_secret"`
	RefreshToken     string          `json:"refresh_token"`
	Account          string          `json:"account"`
	Audience         string          `json:"audience"`
	ImpersonationURL string          `json:"service_account_impersonation_url"`
	Source           *credentialJSON `json:"source_credentials"`
	TokenURL         string          `json:"token_url"`
	UniverseDomain   string          `json:"universe_domain"`
	CredentialSource *struct {
		URL                   string `json:"url"`
		RegionURL             string `json:"region_url"`
		IMDSv2SessionTokenURL string `json:"imdsv2_session_token_url"`
	} `json:"credential_source"`
}

// Credential types we accept, as their JSON "type" field spells them.
const (
	typeServiceAccount         = "service_account"
	typeAuthorizedUser         = "authorized_user"
	typeExternalAccount        = "external_account"
	typeExternalAuthorizedUser = "external_account_authorized_user"
	typeImpersonated           = "impersonated_service_account"
)

// ValidateJSON checks that data is a credential JSON of a supported type
// that x/oauth2 can build a token source from, without minting, and
// returns its principal. Errors describe the content, never quote it.
func ValidateJSON(data []byte) (principal string, err error) {
	f, principal, err := parseCredentialJSON(data)
	if err != nil {
		return "", err
	}
	if _, err := googleTokenSource(context.Background(), f, data, nil); err != nil {
		return "", err
	}
	return principal, nil
}

// ValidateFile is ValidateJSON for a file, read with the limits every
// source applies (a regular file of at most 1 MiB, never blocking on a FIFO).
func ValidateFile(path string) (principal string, err error) {
	data, err := readCredentialFile(path)
	if err != nil {
		return "", err
	}
	if principal, err = ValidateJSON(data); err != nil {
		return "", inFile(err, path)
	}
	return principal, nil
}

// parseCredentialJSON decodes and checks a credential JSON and returns its
// principal.
func parseCredentialJSON(data []byte) (*credentialJSON, string, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, "", errors.New("the credential JSON is empty")
	}
	var f credentialJSON
	if err := json.Unmarshal(data, &f); err != nil {
		if label, ok := pemLabel(data); ok {
			return nil, "", fmt.Errorf("this is a PEM file (%s), not the JSON key: a service-account key is the JSON file Google gives when you create a key (gcloud iam service-accounts keys create KEY.json --iam-account=SA_EMAIL, or the Cloud console's Keys, Add key, JSON); use that file", label)
		}
		return nil, "", fmt.Errorf("not a valid credential JSON: %v", jsonProblem(err, data))
	}
	principal, err := f.check()
	if err != nil {
		return nil, "", err
	}
	return &f, ShownPrincipal(principal), nil
}

// pemLabel reports whether data is PEM (a private key or certificate on
// its own, as people pass for a key) and names its kind, e.g. "-----BEGIN
// PRIVATE KEY-----"; a label that is not plain upper-case words is left
// out, so nothing else of the file is quoted.
func pemLabel(data []byte) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimLeft(string(data[:min(len(data), 128)]), " \t\r\n\ufeff"), "-----BEGIN ")
	if !ok {
		return "", false
	}
	label, _, ok := strings.Cut(rest, "-----")
	if !ok || label == "" || strings.ContainsFunc(label, func(r rune) bool { return (r < 'A' || r > 'Z') && r != ' ' }) {
		return "-----BEGIN ...-----", true
	}
	return "-----BEGIN " + label + "-----", true
}

// credentialFromJSON turns a credential JSON into a Credential whose token
// requests go through a retrying client bound to ctx. Errors describe the
// content, never quote it.
func credentialFromJSON(ctx context.Context, source string, data []byte, scopes []string) (*Credential, error) {
	scopes = scopesOrDefault(scopes)
	f, principal, err := parseCredentialJSON(data)
	if err != nil {
		return nil, err
	}
	cred := &Credential{
		Source:    source,
		Kind:      f.Type,
		Principal: principal,
		Identity:  "json:" + hashHex(string(data), scopeKey(scopes)),
		Cacheable: true,
		TokenSource: &labelledTokenSource{
			// Built on first use: x/oauth2 parses the JSON again, which
			// costs more than a warm get does otherwise; a cache hit needs none of it.
			build:   func() (oauth2.TokenSource, error) { return googleTokenSource(ctx, f, data, scopes) },
			label:   describeCredential(f, principal),
			kind:    f.Type,
			secrets: f.secrets(),
		},
	}
	if f.Type == typeServiceAccount {
		cred.key = &serviceAccountKey{data: data, parsed: f, scopes: scopes}
	}
	return cred, nil
}

// googleTokenSource has x/oauth2 build the token source for a checked
// credential JSON, its requests going through a retrying client bound to ctx.
func googleTokenSource(ctx context.Context, f *credentialJSON, data []byte, scopes []string) (oauth2.TokenSource, error) {
	if err := f.checkPrivateKeys(); err != nil {
		return nil, err
	}
	creds, err := google.CredentialsFromJSONWithTypeAndParams(withHTTPClient(ctx),
		data, google.CredentialsType(f.Type), google.CredentialsParams{Scopes: scopesOrDefault(scopes)})
	if err != nil {
		return nil, fmt.Errorf("unusable %s credential: %s", f.Type, redact(err.Error(), f.secrets()))
	}
	return creds.TokenSource, nil
}

// jsonProblem keeps the position of a syntax error but no file content.
func jsonProblem(err error, data []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := jsonpos.Position(data, se.Offset)
		return fmt.Sprintf("syntax error at line %d, column %d", line, col)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type (%s)", te.Field, te.Value)
	}
	return "cannot parse it"
}

// check validates the fields each type needs and returns the principal.
func (f *credentialJSON) check() (string, error) {
	missing := func(what string, fields ...string) error {
		return fmt.Errorf("the %s credential has no %s", what, strings.Join(fields, " or "))
	}
	switch f.Type {
	case typeServiceAccount:
		if f.ClientEmail == "" {
			return "", missing("service-account", "client_email")
		}
		if f.PrivateKey == "" {
			return "", missing("service-account", "private_key")
		}
		return f.ClientEmail, nil
	case typeAuthorizedUser:
		for _, fld := range []struct{ name, v string }{
			{"client_id", f.ClientID}, {"client_secret", f.ClientSecret}, {"refresh_token", f.RefreshToken},
		} {
			if fld.v == "" {
				return "", missing("authorized_user", fld.name)
			}
		}
		// client_id names the OAuth client (gcloud's is shared by
		// everyone), not the user; only "account", when present, does.
		return f.Account, nil
	case typeExternalAccount, typeExternalAuthorizedUser:
		if f.Audience == "" {
			return "", missing(f.Type, "audience")
		}
		if err := f.checkEndpoints(); err != nil {
			return "", err
		}
		if target := impersonationTarget(f.ImpersonationURL); target != "" {
			return target, nil
		}
		return f.Audience, nil
	case typeImpersonated:
		if f.Source == nil {
			return "", missing(f.Type, "source_credentials")
		}
		target := impersonationTarget(f.ImpersonationURL)
		if target == "" {
			return "", missing(f.Type, "service_account_impersonation_url")
		}
		if err := f.checkEndpoints(); err != nil {
			return "", err
		}
		if err := f.Source.checkEndpoints(); err != nil {
			return "", fmt.Errorf("its source_credentials: %w", err)
		}
		return target, nil
	case "":
		return "", errors.New(`the JSON has no "type" field; it is not a Google credential file`)
	default:
		what := "(not shown)"
		if isTypeName(f.Type) {
			what = fmt.Sprintf("%q", f.Type)
		}
		return "", fmt.Errorf("unsupported credential type %s (supported: %s, %s, %s, %s, %s)", what,
			typeServiceAccount, typeAuthorizedUser, typeExternalAccount, typeExternalAuthorizedUser, typeImpersonated)
	}
}

// isTypeName reports whether s is short lower-case snake_case, and so safe
// to quote from a document that may be secret: a type name, not pasted key
// material.
func isTypeName(s string) bool {
	if len(s) > 40 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}

// secrets lists the values that must never appear in an error.
func (f *credentialJSON) secrets() []string {
	s := []string{f.PrivateKey, f.ClientSecret, f.RefreshToken}
	if f.Source != nil {
		s = append(s, f.Source.secrets()...)
	}
	return s
}

// impersonationTarget extracts the e-mail from
// https://…/serviceAccounts/EMAIL:generateAccessToken.
func impersonationTarget(u string) string {
	const marker = "/serviceAccounts/"
	i := strings.LastIndex(u, marker)
	if i < 0 {
		return ""
	}
	target := strings.TrimSuffix(u[i+len(marker):], ":generateAccessToken")
	if t, err := url.PathUnescape(target); err == nil {
		target = t
	}
	return target
}

func describeCredential(f *credentialJSON, principal string) string {
	kind := f.Type
	switch kind {
	case typeServiceAccount:
		return "service account " + principal
	case typeAuthorizedUser:
		if principal == "" {
			return "user credentials of OAuth client " + f.ClientID + " (account not recorded)"
		}
		return "user credentials " + principal
	case typeExternalAccount, typeExternalAuthorizedUser:
		return "workload identity federation " + principal
	case typeImpersonated:
		return "impersonating " + principal
	}
	return kind + " " + principal
}

// labelledTokenSource makes minting errors name the credential (the caller
// adds the source), explain the cause, and never carry secret material.
type labelledTokenSource struct {
	build   func() (oauth2.TokenSource, error)
	label   string
	kind    string
	secrets []string

	once     sync.Once
	ts       oauth2.TokenSource
	buildErr error
}

func (s *labelledTokenSource) Token() (*oauth2.Token, error) {
	s.once.Do(func() { s.ts, s.buildErr = s.build() })
	if s.buildErr != nil {
		return nil, fmt.Errorf("%s: %w", s.label, s.buildErr)
	}
	tok, err := s.ts.Token()
	if err != nil {
		return nil, &mintError{msg: redact(s.label+": "+explainMintError(s.kind, err, s.secrets), s.secrets), err: err}
	}
	return tok, nil
}

// mintError is a minting failure with a message fit for users; Unwrap
// keeps the cause (e.g. *oauth2.RetrieveError) for callers that decide
// whether a failure is transient.
type mintError struct {
	msg string
	err error
}

func (e *mintError) Error() string { return e.msg }
func (e *mintError) Unwrap() error { return e.err }

// explainMintError says why a token endpoint did not give us a token.
// What it quotes of the answer, which may echo our request, is redacted of
// secrets before it is shortened.
func explainMintError(kind string, err error, secrets []string) string {
	quote := func(s string) string { return oneLine(redact(s, secrets)) }
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		if explained := explainAnswer(err.Error()); explained != "" {
			return explained
		}
		msg := quote(err.Error())
		// Checked on the whole text: the quote may be cut short.
		if strings.HasSuffix(err.Error(), context.DeadlineExceeded.Error()) {
			// x/oauth2 flattens the error, so errors.Is cannot see it.
			msg += ": the token endpoint did not answer in time; check the network and proxy settings (HTTPS_PROXY, NO_PROXY)"
		}
		return msg
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	body := []byte(redact(string(re.Body), secrets))
	code, desc := re.ErrorCode, re.ErrorDescription
	if !refusal(status) {
		// An error code does not make a failing server's answer a refusal.
		detail := answerDetail(body)
		if code != "" {
			detail = quote(strings.TrimSuffix(code+": "+desc, ": "))
		}
		return failingAnswer("token endpoint", status, detail)
	}
	what := map[string]string{
		typeServiceAccount:         "the key",
		typeAuthorizedUser:         "the refresh token",
		typeExternalAccount:        "the external credential",
		typeExternalAuthorizedUser: "the refresh token",
	}[kind]
	if what == "" {
		what = "the credential"
	}
	if code == "" {
		// The service-account flow leaves the RFC 6749 error unparsed.
		var e struct {
			Code string `json:"error"`
			Desc string `json:"error_description"`
		}
		if json.Unmarshal(re.Body, &e) == nil {
			code, desc = e.Code, e.Desc
		}
	}
	if code == "" {
		msg := fmt.Sprintf("token endpoint refused %s", what)
		if status != 0 {
			msg += fmt.Sprintf(" (HTTP %d)", status)
		}
		if detail := answerDetail(body); detail != "" {
			msg += ": " + detail
		}
		return msg
	}
	msg := fmt.Sprintf("token endpoint refused %s: %s", what, code)
	if desc != "" {
		msg += ": " + quote(desc)
	}
	if status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", status)
	}
	switch {
	case code == "invalid_grant" && kind == typeServiceAccount:
		msg += ": check that the key is not deleted or disabled and that this machine's clock is right"
	case code == "invalid_grant" && kind == typeAuthorizedUser:
		msg += ": the refresh token is expired or revoked; run `gcloud auth application-default login` again"
	case code == "invalid_client" || code == "unauthorized_client":
		msg += ": the OAuth client is deleted, disabled or not allowed this grant"
	}
	return msg
}

// oneLine is how a server's answer is quoted in an error: anything shaped
// like a Google token or JWT redacted before the length is capped (so no
// cut leaves a piece of one that redact no longer recognises), whitespace
// runs squeezed to single spaces, and the length capped so a server's HTML
// error page does not flood the terminal. The secrets a caller knows it
// still redacts itself, before calling.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(redact(s, nil)), " ")
	const max = 300
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
