package api

// This file holds no tests: it is the OpenAPI contract checker that the
// package's HTTP tests run on every request they send and every response they
// get, so that ../openapi.yaml and the handlers cannot drift apart.
//
//	v := newSpecValidator(t)
//	res, body := v.do(t, srv.Client(), req) // sends, then checks both sides

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// specFile is the OpenAPI document, relative to this package's directory
// (the working directory of `go test`).
const specFile = "../openapi.yaml"

// specValidator checks HTTP exchanges against the OpenAPI document. It is
// immutable once built and safe for concurrent use by parallel tests.
type specValidator struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options

	// Responses for requests that match no declared operation: the only
	// acceptable answers to those are the problems below.
	notFound         *openapi3.ResponseRef // 404 not-found
	methodNotAllowed *openapi3.ResponseRef // 405 method-not-allowed, with Allow
	adminUnauth      *openapi3.ResponseRef // 401 admin-unauthorized, under /admin/
}

var specCache struct {
	once sync.Once
	v    *specValidator
	err  error
}

// newSpecValidator returns the validator of ../openapi.yaml. The document is
// loaded, validated and routed once per test binary; a broken document fails
// every test that asks for it.
func newSpecValidator(tb testing.TB) *specValidator {
	tb.Helper()
	specCache.once.Do(func() {
		specCache.v, specCache.err = loadSpecValidator(specFile)
	})
	if specCache.err != nil {
		tb.Fatalf("openapi: %v", specCache.err)
	}
	return specCache.v
}

func loadSpecValidator(path string) (*specValidator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	ctx := context.Background()
	if err := doc.Validate(ctx,
		openapi3.EnableExamplesValidation(),
		openapi3.EnableSchemaPatternValidation(),
		openapi3.EnableSchemaDefaultsValidation(),
	); err != nil {
		return nil, fmt.Errorf("validating %s: %w", path, err)
	}

	// Route on the path alone: tests talk to httptest servers on
	// 127.0.0.1:<random port>, and the host form of the public API is
	// reached with arbitrary Host headers. Servers only carry hosts, schemes
	// and base paths (every one of ours has an empty base path), so dropping
	// them at every level makes the router match any scheme and host.
	doc.Servers = nil
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
		for _, op := range item.Operations() {
			op.Servers = nil
		}
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing %s: %w", path, err)
	}

	v := &specValidator{
		doc:    doc,
		router: router,
		opts: &openapi3filter.Options{
			// Who may call what is tested elsewhere: here, only shapes.
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			// Never rewrite the request under validation with defaults.
			SkipSettingDefaults: true,
			MultiError:          true,
		},
	}
	for name, dst := range map[string]**openapi3.ResponseRef{
		"NotFound":          &v.notFound,
		"MethodNotAllowed":  &v.methodNotAllowed,
		"AdminUnauthorized": &v.adminUnauth,
	} {
		ref := doc.Components.Responses[name]
		if ref == nil || ref.Value == nil {
			return nil, fmt.Errorf("%s: components.responses.%s is missing", path, name)
		}
		*dst = ref
	}
	return v, nil
}

// check validates one exchange: req was sent with the body reqBody (req.Body
// itself is not read), and res came back with the body resBody.
//
//   - The request must match an operation of the document, by method and path
//     (any host). A request that matches none is accepted only when it was
//     refused with a 404 not-found or 405 method-not-allowed problem (or, under
//     /admin/, a 401 admin-unauthorized one).
//   - The request is validated: parameters, headers and body. Security
//     requirements are not enforced here. A request that does not conform is
//     accepted only when the server refused it with a 4xx: tests send
//     malformed requests on purpose, and the server must not accept them.
//   - The response is validated: its status must be declared for the
//     operation, and its declared headers, Content-Type and body must
//     conform. A response declared without content must have an empty body.
//
// Every failure is reported with tb.Errorf naming the method, path and status.
func (v *specValidator) check(tb testing.TB, req *http.Request, reqBody []byte, res *http.Response, resBody []byte) {
	tb.Helper()
	if err := v.validate(req, reqBody, res, resBody); err != nil {
		tb.Errorf("openapi: %s %s -> %d: %v", req.Method, requestTarget(req), res.StatusCode, err)
	}
}

// do sends req with c (http.DefaultClient if nil), reads the whole response
// body, checks the exchange and returns the response (whose Body reads the
// returned bytes again) and its body. A transport error fails the test at
// once, so do must be called from the test's goroutine.
func (v *specValidator) do(tb testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			tb.Fatalf("%s %s: reading the request body: %v", req.Method, requestTarget(req), err)
		}
		reqBody = b
		// Keep req.ContentLength as the caller set it (0 means unknown,
		// hence chunked, for a non-nil client body).
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, requestTarget(req), err)
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		tb.Fatalf("%s %s -> %d: reading the response body: %v", req.Method, requestTarget(req), res.StatusCode, err)
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	if reqBody != nil {
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	v.check(tb, req, reqBody, res, resBody)
	return res, resBody
}

// validate is check without the testing.TB.
func (v *specValidator) validate(req *http.Request, reqBody []byte, res *http.Response, resBody []byte) error {
	ctx := context.Background()
	r := cloneWithBody(ctx, req, reqBody)

	route, pathParams, err := v.router.FindRoute(r)
	if err != nil {
		return v.validateUndeclared(ctx, r, err, res, resBody)
	}
	// The router matches the escaped path, so that an escaped slash stays
	// in its segment, and hands the parameters over still escaped; the
	// document describes their values, decoded once.
	for k, p := range pathParams {
		if u, err := url.PathUnescape(p); err == nil {
			pathParams[k] = u
		}
	}

	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: pathParams,
		Route:      route,
		Options:    v.opts,
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)

	var errs []error
	if reqErr != nil && (res.StatusCode < 400 || res.StatusCode >= 500) {
		errs = append(errs, fmt.Errorf("the request does not conform to operation %s, yet the server did not refuse it with a 4xx: %w",
			route.Operation.OperationID, reqErr))
	}
	if err := v.validateResponse(ctx, in, res, resBody); err != nil {
		if reqErr != nil {
			// Also say what was wrong with the request: it explains the status.
			err = fmt.Errorf("%w\n(the request did not conform either: %v)", err, reqErr)
		}
		errs = append(errs, fmt.Errorf("response to operation %s: %w", route.Operation.OperationID, err))
	}
	return errors.Join(errs...)
}

func (v *specValidator) validateResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, res *http.Response, resBody []byte) error {
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Options:                v.opts,
	}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return err
	}
	// ValidateResponse does not look at the body of a response declared
	// without content (e.g. 204): there must be none.
	ref := in.Route.Operation.Responses.Status(res.StatusCode)
	if ref == nil {
		ref = in.Route.Operation.Responses.Default()
	}
	if ref != nil && ref.Value != nil && len(ref.Value.Content) == 0 && len(resBody) > 0 {
		return fmt.Errorf("status %d is declared without content, but the body has %d bytes (Content-Type %q)",
			res.StatusCode, len(resBody), res.Header.Get("Content-Type"))
	}
	return nil
}

// validateUndeclared accepts the refusal of a request that matches no
// operation, as long as the refusal is one of the document's fallback
// responses, and reports anything else as a route missing from the document.
func (v *specValidator) validateUndeclared(ctx context.Context, r *http.Request, routeErr error, res *http.Response, resBody []byte) error {
	fallback := []openapi3.NewResponsesOption{
		openapi3.WithStatus(http.StatusNotFound, v.notFound),
	}
	accepted := "404 not-found"
	if errors.Is(routeErr, routers.ErrMethodNotAllowed) {
		fallback = append(fallback, openapi3.WithStatus(http.StatusMethodNotAllowed, v.methodNotAllowed))
		accepted += " or 405 method-not-allowed"
	}
	if r.URL.Path == "/admin" || strings.HasPrefix(r.URL.Path, "/admin/") {
		fallback = append(fallback, openapi3.WithStatus(http.StatusUnauthorized, v.adminUnauth))
		accepted += " or 401 admin-unauthorized"
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r,
		Route: &routers.Route{
			Spec:      v.doc,
			Path:      r.URL.Path,
			PathItem:  &openapi3.PathItem{},
			Method:    r.Method,
			Operation: &openapi3.Operation{Responses: openapi3.NewResponses(fallback...)},
		},
		Options: v.opts,
	}
	if ref := in.Route.Operation.Responses.Status(res.StatusCode); ref == nil {
		return fmt.Errorf("route not in the spec: no operation %s %s (%v); only a %s problem may answer it",
			r.Method, r.URL.Path, routeErr, accepted)
	}
	if err := v.validateResponse(ctx, in, res, resBody); err != nil {
		return fmt.Errorf("route not in the spec (%s %s: %v), and its refusal does not conform: %w",
			r.Method, r.URL.Path, routeErr, err)
	}
	return nil
}

// cloneWithBody returns a copy of req (client- or server-side) that reads
// body, so that validation neither needs nor consumes req.Body.
func cloneWithBody(ctx context.Context, req *http.Request, body []byte) *http.Request {
	r := req.Clone(ctx)
	if r.URL.Path == "" {
		r.URL.Path = "/"
	}
	if len(body) == 0 {
		r.Body = http.NoBody
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		r.ContentLength = 0
		return r
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return r
}

// requestTarget is the path and query of req, for messages.
func requestTarget(req *http.Request) string {
	if req.URL == nil {
		return req.RequestURI
	}
	return req.URL.RequestURI()
}
