package token

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// htmlAnswerError is an endpoint answering with an HTML page where JSON
// belongs: a proxy's error page or a captive portal's login page. It
// replaces the JSON decoder's "invalid character '<'" with what happened
// and what to check.
type htmlAnswerError struct {
	origin string // scheme://host of the request
	status int
}

// htmlAnswerPhrase starts every htmlAnswerError, so that an error x/oauth2
// flattened to text can still be recognised (see explainHTMLAnswer).
const htmlAnswerPhrase = "the answer from "

func (e *htmlAnswerError) Error() string {
	return fmt.Sprintf("%s%s was an HTML page (HTTP %d), not JSON: a proxy or captive portal (a Wi-Fi login page) may be in the way; check HTTPS_PROXY and NO_PROXY, and that this machine reaches %s",
		htmlAnswerPhrase, e.origin, e.status, e.origin)
}

// refuseHTML turns an HTML answer into an htmlAnswerError: one labelled
// text/html, or any whose body starts with "<", which JSON never does.
func refuseHTML(u *url.URL, resp *http.Response, err error) (*http.Response, error) {
	if err != nil || resp == nil {
		return resp, err
	}
	media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	html := media == "text/html" || media == "application/xhtml+xml"
	if !html {
		br := bufio.NewReader(resp.Body)
		html = firstNonSpace(br) == '<'
		resp.Body = struct {
			io.Reader
			io.Closer
		}{br, resp.Body}
	}
	if !html {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRetainedBody))
	_ = resp.Body.Close()
	return nil, &htmlAnswerError{origin: u.Scheme + "://" + u.Host, status: resp.StatusCode}
}

// firstNonSpace peeks at the first byte of br after white space (at most
// 64 bytes of it), or returns 0.
func firstNonSpace(br *bufio.Reader) byte {
	for n := 1; n <= 64; n++ {
		head, err := br.Peek(n)
		if err != nil {
			return 0
		}
		if c := head[n-1]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c
		}
	}
	return 0
}

// explainHTMLAnswer returns the htmlAnswerError inside msg, from its start,
// dropping what x/oauth2 put in front ("oauth2: cannot fetch token: Post
// ...:"), or "" when msg holds none.
func explainHTMLAnswer(msg string) string {
	i := strings.Index(msg, htmlAnswerPhrase)
	if i < 0 || !strings.Contains(msg[i:], " was an HTML page (HTTP ") {
		return ""
	}
	return msg[i:]
}

// refusal reports whether an HTTP status refuses the request for what it
// carries (4xx other than 408 and 429): waiting does not cure it. 0, a
// status not known, counts as a refusal.
func refusal(status int) bool {
	return status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// failureClass words an answer that is not a refusal by its status class.
func failureClass(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "is rate-limiting requests"
	case http.StatusRequestTimeout:
		return "timed out"
	}
	return "is failing"
}

// failingAnswer words an answer that is not a refusal (5xx, 408, 429) the
// same way for every endpoint: which one, how it fails, what it said, and
// that waiting cures it, not changing the credential.
func failingAnswer(endpoint string, status int, detail string) string {
	msg := fmt.Sprintf("%s %s (HTTP %d)", endpoint, failureClass(status), status)
	if detail != "" {
		msg += ": " + detail
	}
	return msg + ": the server failed, it did not refuse the credential; try again later"
}

// answerDetail is what an error answer says, on one line: the OAuth2 error
// code and description, or Google's {"error":{"status","message"}}, else
// the body itself. The caller redacts the secrets it knows from body first.
func answerDetail(body []byte) string {
	var oauth struct {
		Code string `json:"error"`
		Desc string `json:"error_description"`
	}
	if json.Unmarshal(body, &oauth) == nil && oauth.Code != "" {
		return oneLine(strings.TrimSuffix(oauth.Code+": "+oauth.Desc, ": "))
	}
	var google struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &google) == nil && (google.Error.Message != "" || google.Error.Status != "") {
		return oneLine(google.Error.Status + " " + google.Error.Message)
	}
	return oneLine(string(body))
}
