package deploy

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// A rendering is a kustomization the tests render and check.
type renderingSpec struct {
	name string
	dir  string
	// external lists what the operator provides in the cluster and the
	// render therefore lacks; docs/operations.md must document each.
	external []externalRef
	// proxies says what latchkey-config's trusted-proxies must be.
	proxies proxiesRule
}

// proxiesRule is what a rendering's trusted proxies must be.
type proxiesRule int

const (
	// proxiesNone: nothing in front of the pods (kubectl port-forward),
	// so no proxy is trusted.
	proxiesNone proxiesRule = iota
	// proxiesPlaceholder: the operator sets them, and until then the
	// render carries trustedProxiesPlaceholder, which Latchkey refuses.
	proxiesPlaceholder
	// proxiesSet: an ingress's own addresses, each entry narrow.
	proxiesSet
)

// trustedProxiesPlaceholder is the base's and the prod overlay's
// trusted-proxies: no address, so that a deployment that forgot to set it
// fails at start-up rather than trusting a range or nobody.
const trustedProxiesPlaceholder = "SET-ME-to-the-ingress-controller-addresses"

// externalRef is a Secret or ConfigMap that a render refers to but does not
// contain.
type externalRef struct {
	Kind string // Secret or ConfigMap
	Name string
	Keys []string
}

// operatorProvided is what the prod overlay expects to find in its
// namespace.
var operatorProvided = []externalRef{
	{Kind: "Secret", Name: "latchkey", Keys: []string{"cookie-keys", "admin-token", "redis-url"}},
	{Kind: "Secret", Name: "latchkey-metrics", Keys: []string{"token"}},
	{Kind: "ConfigMap", Name: "latchkey-tenants", Keys: []string{"tenants.yaml"}},
}

// renderings lists every overlay, and the optional component on top of one;
// TestEveryOverlayIsChecked keeps it complete.
var renderings = []renderingSpec{
	{name: "dev", dir: "overlays/dev", proxies: proxiesNone},
	{name: "prod", dir: "overlays/prod", external: operatorProvided, proxies: proxiesPlaceholder},
	{name: "prod+servicemonitor", dir: "testdata/prod-servicemonitor", external: operatorProvided, proxies: proxiesPlaceholder},
	{name: "prod as configured", dir: "testdata/prod-configured", external: operatorProvided, proxies: proxiesSet},
}

// object is one rendered object, decoded into its typed form.
type object struct {
	APIVersion, Kind, Namespace, Name string
	YAML                              []byte
	// Obj is a pointer to the k8s.io/api type (or serviceMonitor).
	Obj any
}

func (o *object) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

type rendering struct {
	renderingSpec
	objects []*object
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// that the component uses. k8s.io/api has no type for it; decoding into
// this struct strictly makes a misspelled or unexpected field fail. Add a
// field here before using it in the manifest.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		JobLabel  string `json:"jobLabel,omitempty"`
		Endpoints []struct {
			Port          string              `json:"port,omitempty"`
			TargetPort    *intstr.IntOrString `json:"targetPort,omitempty"`
			Path          string              `json:"path,omitempty"`
			Scheme        string              `json:"scheme,omitempty"`
			Interval      string              `json:"interval,omitempty"`
			ScrapeTimeout string              `json:"scrapeTimeout,omitempty"`
			Authorization *struct {
				Type        string                    `json:"type,omitempty"`
				Credentials *corev1.SecretKeySelector `json:"credentials,omitempty"`
			} `json:"authorization,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// newTyped returns an empty typed object for an apiVersion and kind, or
// nil for one the tests do not know: a new kind must be added here, with
// rules for it where it matters.
func newTyped(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &serviceMonitor{}
	}
	return nil
}

// decodeStrict decodes one object's YAML into its typed form, failing on
// unknown or duplicate fields.
func decodeStrict(apiVersion, kind string, y []byte) (any, error) {
	obj := newTyped(apiVersion, kind)
	if obj == nil {
		return nil, fmt.Errorf("no typed decoder for apiVersion %q kind %q: add it to newTyped", apiVersion, kind)
	}
	if err := yaml.UnmarshalStrict(y, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// kustomize renders dir in-process, offline, as `kubectl kustomize` would.
func kustomize(dir string) ([]*object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	var objs []*object
	var errs []string
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		o := &object{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName(), YAML: y}
		if o.Obj, err = decodeStrict(o.APIVersion, o.Kind, y); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", o, err))
			continue
		}
		objs = append(objs, o)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("strict decoding failed:\n%s", strings.Join(errs, "\n"))
	}
	return objs, nil
}

var renderCache sync.Map // dir → func() ([]*object, error)

// render returns the objects of a rendering; each directory is rendered
// once per test binary.
func render(tb testing.TB, spec renderingSpec) *rendering {
	tb.Helper()
	f, _ := renderCache.LoadOrStore(spec.dir, sync.OnceValues(func() ([]*object, error) { return kustomize(spec.dir) }))
	objs, err := f.(func() ([]*object, error))()
	if err != nil {
		tb.Fatalf("render %s: %v", spec.dir, err)
	}
	return &rendering{renderingSpec: spec, objects: objs}
}

// clone returns a deep copy, for tests that break a rendering on purpose.
func (r *rendering) clone(tb testing.TB) *rendering {
	tb.Helper()
	c := &rendering{renderingSpec: r.renderingSpec}
	for _, o := range r.objects {
		obj, err := decodeStrict(o.APIVersion, o.Kind, o.YAML)
		if err != nil {
			tb.Fatal(err)
		}
		d := *o
		d.Obj = obj
		c.objects = append(c.objects, &d)
	}
	return c
}

func ofKind[T any](r *rendering) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// workload is a Deployment or StatefulSet: what runs pods.
type workload struct {
	Kind, Namespace, Name string
	Selector              *metav1.LabelSelector
	Template              *corev1.PodTemplateSpec
	Replicas              *int32
}

func (w workload) String() string { return w.Kind + "/" + w.Namespace + "/" + w.Name }

func (r *rendering) workloads() []workload {
	var out []workload
	for _, d := range ofKind[*appsv1.Deployment](r) {
		out = append(out, workload{"Deployment", d.Namespace, d.Name, d.Spec.Selector, &d.Spec.Template, d.Spec.Replicas})
	}
	for _, s := range ofKind[*appsv1.StatefulSet](r) {
		out = append(out, workload{"StatefulSet", s.Namespace, s.Name, s.Spec.Selector, &s.Spec.Template, s.Spec.Replicas})
	}
	return out
}

// latchkey returns the Latchkey Deployment and its container; a rendering
// has exactly one of each.
func (r *rendering) latchkey(tb testing.TB) (*appsv1.Deployment, *corev1.Container) {
	tb.Helper()
	var ds []*appsv1.Deployment
	for _, d := range ofKind[*appsv1.Deployment](r) {
		if d.Name == "latchkey" {
			ds = append(ds, d)
		}
	}
	if len(ds) != 1 {
		tb.Fatalf("%s: %d Deployments named latchkey, want 1", r.name, len(ds))
	}
	d := ds[0]
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "latchkey" {
			return d, c
		}
	}
	tb.Fatalf("%s: the latchkey Deployment has no container named latchkey", r.name)
	return nil, nil
}

func envVar(c *corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// lookupData returns the value of key in a Secret or ConfigMap of the
// rendering, whether the object exists, and whether the key does.
func (r *rendering) lookupData(kind, namespace, name, key string) (value string, objFound, keyFound bool) {
	for _, o := range r.objects {
		if o.Kind != kind || o.Namespace != namespace || o.Name != name {
			continue
		}
		switch v := o.Obj.(type) {
		case *corev1.Secret:
			if b, ok := v.Data[key]; ok {
				return string(b), true, true
			}
			s, ok := v.StringData[key]
			return s, true, ok
		case *corev1.ConfigMap:
			if s, ok := v.Data[key]; ok {
				return s, true, true
			}
			b, ok := v.BinaryData[key]
			return string(b), true, ok
		}
	}
	return "", false, false
}

func (r *rendering) external(kind, name string) (externalRef, bool) {
	for _, e := range r.renderingSpec.external {
		if e.Kind == kind && e.Name == name {
			return e, true
		}
	}
	return externalRef{}, false
}

func TestRenderedObjectsDecodeStrictly(t *testing.T) {
	t.Parallel()
	for _, spec := range renderings {
		t.Run(spec.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, spec)
			if len(r.objects) == 0 {
				t.Fatal("rendered no objects")
			}
			for _, o := range r.objects {
				t.Logf("%s", o)
			}
		})
	}
}

// TestStrictDecodingCatchesTypos proves the decoding above would notice an
// overlay patch with a misspelled field, which Kustomize itself accepts.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	t.Parallel()
	_, err := kustomize("testdata/misspelled")
	if err == nil || !strings.Contains(err.Error(), "readinesProbe") {
		t.Fatalf("rendering testdata/misspelled: err = %v, want an unknown field readinesProbe", err)
	}
	if _, err := decodeStrict("example.com/v1", "Widget", []byte("kind: Widget")); err == nil {
		t.Error("decodeStrict accepted a kind it has no type for")
	}
}

// TestEveryOverlayIsChecked fails when an overlay or component is added
// without a rendering here to check it.
func TestEveryOverlayIsChecked(t *testing.T) {
	t.Parallel()
	for _, parent := range []string{"overlays", "components"} {
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			dir := parent + "/" + e.Name()
			used := slices.ContainsFunc(renderings, func(s renderingSpec) bool {
				if s.dir == dir {
					return true
				}
				k, err := os.ReadFile(s.dir + "/kustomization.yaml")
				return err == nil && bytes.Contains(k, []byte("../../"+dir))
			})
			if !used {
				t.Errorf("%s is rendered by no entry of renderings", dir)
			}
		}
	}
}

// TestOperatorProvidedIsDocumented keeps the list of what the operator
// provides in step with docs/operations.md and the prod overlay's header.
func TestOperatorProvidedIsDocumented(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"../docs/operations.md", "overlays/prod/kustomization.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, e := range operatorProvided {
			for _, word := range append([]string{e.Name}, e.Keys...) {
				if !strings.Contains(text, word) {
					t.Errorf("%s does not mention %s %s's %q", file, e.Kind, e.Name, word)
				}
			}
		}
	}
}
