package deploy

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The user and group of the distroless nonroot image, which the Dockerfile
// sets and the manifests require.
const nonrootID = 65532

// secretDir is where the Secret's files are mounted; Latchkey re-reads
// them, so keys rotate without a restart.
const secretDir = "/var/run/secrets/latchkey"

// baselineMiB is Latchkey's resident memory at rest, measured after
// start-up (docs/operations.md, "Sizing"); the hashing budget comes on top.
const baselineMiB = 32

// A rule checks one property of a rendering and returns every violation.
type rule struct {
	name  string
	check func(t testing.TB, r *rendering) []error
}

var rules = []rule{
	{"images are pinned", checkImagesPinned},
	{"selectors match template labels", checkSelectors},
	{"probes", checkProbes},
	{"security context", checkSecurityContext},
	{"no replicas beside an HPA", checkNoReplicasWithHPA},
	{"HPA scales on CPU", checkHPA},
	{"PDB allows one disruption", checkPDB},
	{"service and network policy ports exist on the container", checkPorts},
	{"listeners", checkListeners},
	{"GOMEMLIMIT below the memory limit", checkMemory},
	{"graceful stop", checkGracefulStop},
	{"references resolve", checkReferences},
	{"secrets are files or references", checkSecrets},
	{"trusted proxies", checkTrustedProxies},
	{"network policy", checkNetworkPolicy},
	{"topology spread", checkTopologySpread},
	{"service monitor", checkServiceMonitor},
	{"namespaces", checkNamespaces},
}

func TestRules(t *testing.T) {
	t.Parallel()
	for _, spec := range renderings {
		for _, rl := range rules {
			t.Run(spec.name+"/"+rl.name, func(t *testing.T) {
				t.Parallel()
				r := render(t, spec)
				for _, err := range rl.check(t, r) {
					t.Error(err)
				}
			})
		}
	}
}

// TestRulesCatchBreakage breaks the dev rendering in one way per case and
// expects the named rule to notice: a rule that never fails proves nothing.
func TestRulesCatchBreakage(t *testing.T) {
	t.Parallel()
	deployment := func(r *rendering) *appsv1.Deployment { d, _ := r.latchkey(t); return d }
	container := func(r *rendering) *corev1.Container { _, c := r.latchkey(t); return c }
	setEnv := func(c *corev1.Container, name, value string) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i] = corev1.EnvVar{Name: name, Value: value}
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
	policy := func(r *rendering) *networkingv1.NetworkPolicy {
		for _, np := range ofKind[*networkingv1.NetworkPolicy](r) {
			if np.Name == "latchkey" {
				return np
			}
		}
		t.Fatal("no NetworkPolicy latchkey")
		return nil
	}
	// adminRule is the ingress rule of the admin port.
	adminRule := func(r *rendering) *networkingv1.NetworkPolicyIngressRule {
		np := policy(r)
		for i, rule := range np.Spec.Ingress {
			if slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool {
				return portIs(p, intstr.FromString("admin"), corev1.ProtocolTCP)
			}) {
				return &np.Spec.Ingress[i]
			}
		}
		t.Fatal("no ingress rule for the admin port")
		return nil
	}
	setProxies := func(v string) func(r *rendering) {
		return func(r *rendering) {
			for _, cm := range ofKind[*corev1.ConfigMap](r) {
				if _, ok := cm.Data["trusted-proxies"]; ok {
					cm.Data["trusted-proxies"] = v
				}
			}
		}
	}
	sel := func(kv ...string) *metav1.LabelSelector {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &metav1.LabelSelector{MatchLabels: m}
	}
	endpointAuth := func(r *rendering, name, key string) {
		for _, sm := range ofKind[*serviceMonitor](r) {
			for i := range sm.Spec.Endpoints {
				if name == "" {
					sm.Spec.Endpoints[i].Authorization = nil
					continue
				}
				sm.Spec.Endpoints[i].Authorization.Credentials.Name = name
				sm.Spec.Endpoints[i].Authorization.Credentials.Key = key
			}
		}
	}
	tests := []struct {
		name   string
		rule   string
		on     string // the rendering broken; "" means dev
		mutate func(r *rendering)
	}{
		{"latest tag", "images are pinned", "", func(r *rendering) { container(r).Image = "latchkey:latest" }},
		{"no tag", "images are pinned", "", func(r *rendering) { container(r).Image = "redis" }},
		{"selector misses the template", "selectors match template labels", "", func(r *rendering) {
			deployment(r).Spec.Template.Labels["app.kubernetes.io/component"] = "other"
		}},
		{"HPA names another Deployment", "selectors match template labels", "", func(r *rendering) {
			ofKind[*autoscalingv2.HorizontalPodAutoscaler](r)[0].Spec.ScaleTargetRef.Name = "latchkey-old"
		}},
		{"readiness on healthz", "probes", "", func(r *rendering) { container(r).ReadinessProbe.HTTPGet.Path = "/healthz" }},
		{"liveness on the public port", "probes", "", func(r *rendering) {
			container(r).LivenessProbe.HTTPGet.Port = intstr.FromString("http")
		}},
		{"no startup probe", "probes", "", func(r *rendering) { container(r).StartupProbe = nil }},
		{"writable root", "security context", "", func(r *rendering) {
			container(r).SecurityContext.ReadOnlyRootFilesystem = new(false)
		}},
		{"capability kept", "security context", "", func(r *rendering) {
			container(r).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
		}},
		{"root user", "security context", "", func(r *rendering) {
			deployment(r).Spec.Template.Spec.SecurityContext.RunAsUser = new(int64(0))
		}},
		{"token mounted", "security context", "", func(r *rendering) {
			deployment(r).Spec.Template.Spec.AutomountServiceAccountToken = nil
		}},
		{"replicas beside the HPA", "no replicas beside an HPA", "", func(r *rendering) { deployment(r).Spec.Replicas = new(int32(3)) }},
		{"Service targets a missing port", "service and network policy ports exist on the container", "", func(r *rendering) {
			ofKind[*corev1.Service](r)[0].Spec.Ports[0].TargetPort = intstr.FromString("https")
		}},
		{"NetworkPolicy admits a missing port", "service and network policy ports exist on the container", "", func(r *rendering) {
			for _, np := range ofKind[*networkingv1.NetworkPolicy](r) {
				if np.Name == "latchkey" {
					p := intstr.FromInt32(9999)
					np.Spec.Ingress[0].Ports[0].Port = &p
				}
			}
		}},
		{"admin on loopback", "listeners", "", func(r *rendering) { setEnv(container(r), "LATCHKEY_ADMIN_ADDR", "127.0.0.1:8081") }},
		{"GOMEMLIMIT at the limit", "GOMEMLIMIT below the memory limit", "", func(r *rendering) { setEnv(container(r), "GOMEMLIMIT", "256MiB") }},
		{"GOMEMLIMIT missing", "GOMEMLIMIT below the memory limit", "", func(r *rendering) {
			c := container(r)
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
		}},
		{"grace period too short", "graceful stop", "", func(r *rendering) {
			deployment(r).Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(25))
		}},
		{"no preStop", "graceful stop", "", func(r *rendering) { container(r).Lifecycle = nil }},
		{"dangling Secret", "references resolve", "", func(r *rendering) {
			container(r).Env = append(container(r).Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}})
		}},
		{"missing key", "references resolve", "", func(r *rendering) {
			for _, e := range container(r).Env {
				if e.Name == "LATCHKEY_REDIS_URL" {
					e.ValueFrom.SecretKeyRef.Key = "redis-uri"
				}
			}
		}},
		{"cookie keys in the environment", "secrets are files or references", "", func(r *rendering) {
			setEnv(container(r), "LATCHKEY_COOKIE_KEYS", "c2VjcmV0")
		}},
		{"secret mounted with subPath", "secrets are files or references", "", func(r *rendering) {
			for i, m := range container(r).VolumeMounts {
				if m.MountPath == secretDir {
					container(r).VolumeMounts[i].SubPath = "cookie-keys"
				}
			}
		}},
		{"metrics token in the environment", "secrets are files or references", "", func(r *rendering) {
			setEnv(container(r), "LATCHKEY_METRICS_TOKEN", "c2VjcmV0c2VjcmV0c2VjcmV0")
		}},
		{"a proxy where nothing proxies", "trusted proxies", "", setProxies("10.244.0.0/16")},
		{"bad trusted proxy", "trusted proxies", "prod as configured", setProxies("the ingress")},
		{"the pod range", "trusted proxies", "prod as configured", setProxies("10.244.0.0/16")},
		{"a node's pod range among others", "trusted proxies", "prod as configured", setProxies("10.244.250.0/28, 10.244.3.0/23")},
		{"every IPv4 address", "trusted proxies", "prod as configured", setProxies("0.0.0.0/0")},
		{"every IPv6 address", "trusted proxies", "prod as configured", setProxies("::/0")},
		{"an IPv6 /64", "trusted proxies", "prod as configured", setProxies("fd00:10:244:1::/64")},
		{"the placeholder left in", "trusted proxies", "prod as configured", setProxies(trustedProxiesPlaceholder)},
		{"nothing trusted behind an ingress", "trusted proxies", "prod as configured", setProxies("")},
		{"a real range in the repository's prod overlay", "trusted proxies", "prod", setProxies("10.244.250.0/28")},
		{"no placeholder in the prod overlay", "trusted proxies", "prod", setProxies("")},
		{"admin port open to the world", "network policy", "", func(r *rendering) { adminRule(r).From = nil }},
		{"admin port from every namespace", "network policy", "", func(r *rendering) {
			adminRule(r).From = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
		}},
		{"admin port from any pod labelled Prometheus", "network policy", "", func(r *rendering) {
			adminRule(r).From[0].NamespaceSelector = &metav1.LabelSelector{}
		}},
		{"admin port from all of monitoring", "network policy", "", func(r *rendering) { adminRule(r).From[0].PodSelector = nil }},
		{"admin port from every pod of the namespace", "network policy", "", func(r *rendering) {
			adminRule(r).From[1].PodSelector = &metav1.LabelSelector{}
		}},
		{"admin clients of any namespace", "network policy", "", func(r *rendering) {
			adminRule(r).From[1].NamespaceSelector = &metav1.LabelSelector{}
		}},
		{"admin port from an address block", "network policy", "", func(r *rendering) {
			rule := adminRule(r)
			rule.From = append(rule.From, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}})
		}},
		{"admin port open by number", "network policy", "", func(r *rendering) {
			p := intstr.FromInt32(8081)
			np := policy(r)
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{{Port: &p}}})
		}},
		{"admin and public in one open rule", "network policy", "", func(r *rendering) {
			np := policy(r)
			np.Spec.Ingress[0].Ports = append(np.Spec.Ingress[0].Ports, adminRule(r).Ports...)
		}},
		{"Prometheus shut out", "network policy", "", func(r *rendering) {
			adminRule(r).From[0].NamespaceSelector = sel("kubernetes.io/metadata.name", "prometheus")
		}},
		{"the ingress shut out", "network policy", "prod as configured", func(r *rendering) {
			policy(r).Spec.Ingress[0].From[0].NamespaceSelector = sel("kubernetes.io/metadata.name", "ingress")
		}},
		{"ServiceMonitor without the token", "service monitor", "prod+servicemonitor", func(r *rendering) { endpointAuth(r, "", "") }},
		{"ServiceMonitor with another Secret", "service monitor", "prod+servicemonitor", func(r *rendering) { endpointAuth(r, "latchkey", "admin-token") }},
		{"ServiceMonitor with a Secret nobody provides", "service monitor", "prod+servicemonitor", func(r *rendering) {
			endpointAuth(r, "latchkey-metrics", "token")
			for i := range r.renderingSpec.external {
				if r.renderingSpec.external[i].Name == "latchkey-metrics" {
					r.renderingSpec.external = slices.Delete(slices.Clone(r.renderingSpec.external), i, i+1)
					break
				}
			}
		}},
		{"no DNS", "network policy", "", func(r *rendering) { policy(r).Spec.Egress = policy(r).Spec.Egress[:1] }},
		{"no zone spread", "topology spread", "", func(r *rendering) {
			deployment(r).Spec.Template.Spec.TopologySpreadConstraints = deployment(r).Spec.Template.Spec.TopologySpreadConstraints[1:]
		}},
		{"PDB blocks every eviction", "PDB allows one disruption", "", func(r *rendering) {
			p := ofKind[*policyv1.PodDisruptionBudget](r)[0]
			p.Spec.MaxUnavailable = nil
			p.Spec.MinAvailable = new(intstr.FromInt32(2))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			i := slices.IndexFunc(rules, func(rl rule) bool { return rl.name == tt.rule })
			if i < 0 {
				t.Fatalf("no rule %q", tt.rule)
			}
			on := tt.on
			if on == "" {
				on = "dev"
			}
			j := slices.IndexFunc(renderings, func(s renderingSpec) bool { return s.name == on })
			if j < 0 {
				t.Fatalf("no rendering %q", on)
			}
			r := render(t, renderings[j]).clone(t)
			if errs := rules[i].check(t, r); len(errs) > 0 {
				t.Fatalf("the unbroken rendering already fails %q: %v", tt.rule, errs)
			}
			tt.mutate(r)
			errs := rules[i].check(t, r)
			if len(errs) == 0 {
				t.Fatalf("rule %q did not notice", tt.rule)
			}
			t.Logf("noticed: %v", errors.Join(errs...))
		})
	}
}

// ---- the rules ----

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// checkImage reports why an image reference is not pinned: a digest, or a
// tag that is not "latest".
func checkImage(image string) error {
	name, digest, hasDigest := strings.Cut(image, "@")
	if hasDigest {
		if !digestRE.MatchString(digest) {
			return fmt.Errorf("image %q: malformed digest", image)
		}
		return nil
	}
	slash := strings.LastIndexByte(name, '/')
	colon := strings.LastIndexByte(name, ':')
	if colon < slash+1 {
		return fmt.Errorf("image %q has no tag or digest: it means :latest", image)
	}
	if tag := name[colon+1:]; tag == "latest" || tag == "" {
		return fmt.Errorf("image %q: pin a version or digest, not %q", image, tag)
	}
	return nil
}

func checkImagesPinned(_ testing.TB, r *rendering) []error {
	var errs []error
	for _, w := range r.workloads() {
		for _, c := range slices.Concat(w.Template.Spec.InitContainers, w.Template.Spec.Containers) {
			if err := checkImage(c.Image); err != nil {
				errs = append(errs, fmt.Errorf("%s container %s: %w", w, c.Name, err))
			}
		}
	}
	return errs
}

func selects(sel *metav1.LabelSelector, lbls map[string]string) (bool, error) {
	if sel == nil {
		return false, errors.New("no selector")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	if s.Empty() {
		return false, errors.New("an empty selector selects everything")
	}
	return s.Matches(labels.Set(lbls)), nil
}

// selectedWorkloads returns the workloads in namespace whose pods sel
// selects.
func (r *rendering) selectedWorkloads(namespace string, sel *metav1.LabelSelector) ([]workload, error) {
	var out []workload
	for _, w := range r.workloads() {
		if w.Namespace != namespace {
			continue
		}
		ok, err := selects(sel, w.Template.Labels)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, w)
		}
	}
	return out, nil
}

func checkSelectors(_ testing.TB, r *rendering) []error {
	var errs []error
	for _, w := range r.workloads() {
		if ok, err := selects(w.Selector, w.Template.Labels); err != nil || !ok {
			errs = append(errs, fmt.Errorf("%s: selector %v does not match its template's labels %v (%v)", w, w.Selector, w.Template.Labels, err))
		}
	}
	one := func(what string, namespace string, sel *metav1.LabelSelector) {
		ws, err := r.selectedWorkloads(namespace, sel)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		case len(ws) != 1:
			errs = append(errs, fmt.Errorf("%s selects the pods of %d workloads %v, want exactly 1", what, len(ws), ws))
		}
	}
	for _, s := range ofKind[*corev1.Service](r) {
		one("Service/"+s.Name, s.Namespace, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
	}
	for _, p := range ofKind[*policyv1.PodDisruptionBudget](r) {
		one("PodDisruptionBudget/"+p.Name, p.Namespace, p.Spec.Selector)
	}
	for _, np := range ofKind[*networkingv1.NetworkPolicy](r) {
		one("NetworkPolicy/"+np.Name, np.Namespace, &np.Spec.PodSelector)
	}
	for _, h := range ofKind[*autoscalingv2.HorizontalPodAutoscaler](r) {
		ref := h.Spec.ScaleTargetRef
		if !slices.ContainsFunc(r.workloads(), func(w workload) bool {
			return w.Kind == ref.Kind && w.Name == ref.Name && w.Namespace == h.Namespace && ref.APIVersion == "apps/v1"
		}) {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler/%s: scaleTargetRef %s %s/%s is not in the render", h.Name, ref.APIVersion, ref.Kind, ref.Name))
		}
	}
	return errs
}

func checkProbes(t testing.TB, r *rendering) []error {
	var errs []error
	_, c := r.latchkey(t)
	adminPort := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "admin" })
	if adminPort < 0 {
		errs = append(errs, errors.New("the latchkey container has no port named admin"))
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		switch {
		case p.probe == nil:
			errs = append(errs, fmt.Errorf("no %s probe", p.kind))
		case p.probe.HTTPGet == nil:
			errs = append(errs, fmt.Errorf("the %s probe is not an httpGet", p.kind))
		case p.probe.HTTPGet.Path != p.path:
			errs = append(errs, fmt.Errorf("the %s probe gets %q, want %q", p.kind, p.probe.HTTPGet.Path, p.path))
		case p.probe.HTTPGet.Port != intstr.FromString("admin"):
			errs = append(errs, fmt.Errorf("the %s probe's port is %v, want the port named admin", p.kind, p.probe.HTTPGet.Port.String()))
		}
	}
	// Every other container is probed too.
	for _, w := range r.workloads() {
		for _, c := range w.Template.Spec.Containers {
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				errs = append(errs, fmt.Errorf("%s container %s lacks a liveness or readiness probe", w, c.Name))
			}
		}
	}
	return errs
}

func checkSecurityContext(t testing.TB, r *rendering) []error {
	var errs []error
	bad := func(w workload, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", w, fmt.Sprintf(format, args...)))
	}
	for _, w := range r.workloads() {
		ps := w.Template.Spec
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			bad(w, "automountServiceAccountToken is not false")
		}
		if ps.HostNetwork || ps.HostPID || ps.HostIPC {
			bad(w, "uses a host namespace")
		}
		psc := ps.SecurityContext
		if psc == nil {
			bad(w, "no pod securityContext")
			continue
		}
		if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			bad(w, "pod runAsNonRoot is not true")
		}
		if psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.RunAsGroup == nil || *psc.RunAsGroup == 0 {
			bad(w, "pod runAsUser and runAsGroup must be set, and not 0")
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad(w, "pod seccompProfile is not RuntimeDefault")
		}
		for _, c := range slices.Concat(ps.InitContainers, ps.Containers) {
			sc := c.SecurityContext
			if sc == nil {
				bad(w, "container %s: no securityContext", c.Name)
				continue
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad(w, "container %s: allowPrivilegeEscalation is not false", c.Name)
			}
			if sc.Privileged != nil && *sc.Privileged {
				bad(w, "container %s: privileged", c.Name)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				bad(w, "container %s: readOnlyRootFilesystem is not true", c.Name)
			}
			if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				bad(w, "container %s: runAsNonRoot is not true", c.Name)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				bad(w, "container %s: capabilities must drop ALL and add none", c.Name)
			}
			if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				bad(w, "container %s: seccompProfile is not RuntimeDefault", c.Name)
			}
			if (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (sc.RunAsGroup != nil && *sc.RunAsGroup == 0) {
				bad(w, "container %s: runs as root", c.Name)
			}
		}
	}
	d, c := r.latchkey(t)
	psc, sc := d.Spec.Template.Spec.SecurityContext, c.SecurityContext
	for _, v := range []struct {
		what string
		id   *int64
	}{{"pod runAsUser", psc.RunAsUser}, {"pod runAsGroup", psc.RunAsGroup}, {"container runAsUser", sc.RunAsUser}, {"container runAsGroup", sc.RunAsGroup}} {
		if v.id == nil || *v.id != nonrootID {
			errs = append(errs, fmt.Errorf("latchkey %s is not %d, the image's user", v.what, nonrootID))
		}
	}
	if d.Spec.Template.Spec.EnableServiceLinks == nil || *d.Spec.Template.Spec.EnableServiceLinks {
		errs = append(errs, errors.New("latchkey: enableServiceLinks is not false: a Service named latchkey would inject LATCHKEY_* variables"))
	}
	if name := d.Spec.Template.Spec.ServiceAccountName; name != "" {
		for _, sa := range ofKind[*corev1.ServiceAccount](r) {
			if sa.Name == name && (sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken) {
				errs = append(errs, fmt.Errorf("ServiceAccount/%s: automountServiceAccountToken is not false", name))
			}
		}
	}
	return errs
}

// hpaTargets returns the HPAs by the workload they scale.
func (r *rendering) hpaTargets() map[string]*autoscalingv2.HorizontalPodAutoscaler {
	m := map[string]*autoscalingv2.HorizontalPodAutoscaler{}
	for _, h := range ofKind[*autoscalingv2.HorizontalPodAutoscaler](r) {
		m[h.Spec.ScaleTargetRef.Kind+"/"+h.Namespace+"/"+h.Spec.ScaleTargetRef.Name] = h
	}
	return m
}

func checkNoReplicasWithHPA(_ testing.TB, r *rendering) []error {
	var errs []error
	hpas := r.hpaTargets()
	for _, w := range r.workloads() {
		if _, ok := hpas[w.String()]; ok && w.Replicas != nil {
			errs = append(errs, fmt.Errorf("%s sets replicas (%d) although an HPA scales it: every apply would reset the count", w, *w.Replicas))
		}
	}
	return errs
}

func checkHPA(t testing.TB, r *rendering) []error {
	var errs []error
	d, c := r.latchkey(t)
	h, ok := r.hpaTargets()["Deployment/"+d.Namespace+"/"+d.Name]
	if !ok {
		return []error{errors.New("no HorizontalPodAutoscaler scales the latchkey Deployment")}
	}
	cpu := slices.ContainsFunc(h.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
		return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
			m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil
	})
	if !cpu {
		errs = append(errs, errors.New("the HPA has no CPU utilization target"))
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		errs = append(errs, errors.New("the latchkey container has no CPU request, which CPU utilization is measured against"))
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
		errs = append(errs, fmt.Errorf("HPA replicas min %v max %d are not 1 <= min <= max", h.Spec.MinReplicas, h.Spec.MaxReplicas))
	}
	return errs
}

func checkPDB(t testing.TB, r *rendering) []error {
	d, _ := r.latchkey(t)
	var pdbs []*policyv1.PodDisruptionBudget
	for _, p := range ofKind[*policyv1.PodDisruptionBudget](r) {
		if ok, _ := selects(p.Spec.Selector, d.Spec.Template.Labels); ok && p.Namespace == d.Namespace {
			pdbs = append(pdbs, p)
		}
	}
	if len(pdbs) != 1 {
		return []error{fmt.Errorf("%d PodDisruptionBudgets cover the latchkey pods, want 1", len(pdbs))}
	}
	p := pdbs[0]
	minReplicas := int32(1)
	if h, ok := r.hpaTargets()["Deployment/"+d.Namespace+"/"+d.Name]; ok && h.Spec.MinReplicas != nil {
		minReplicas = *h.Spec.MinReplicas
	}
	switch {
	case p.Spec.MaxUnavailable != nil:
		if p.Spec.MaxUnavailable.Type != intstr.Int || p.Spec.MaxUnavailable.IntVal < 1 {
			return []error{fmt.Errorf("PDB maxUnavailable %s: want a count of at least 1", p.Spec.MaxUnavailable.String())}
		}
	case p.Spec.MinAvailable != nil:
		if p.Spec.MinAvailable.Type != intstr.Int || p.Spec.MinAvailable.IntVal >= minReplicas {
			return []error{fmt.Errorf("PDB minAvailable %s leaves no disruption at the HPA's minimum of %d replicas: node drains would block", p.Spec.MinAvailable.String(), minReplicas)}
		}
	default:
		return []error{errors.New("PDB sets neither minAvailable nor maxUnavailable")}
	}
	return nil
}

// hasPort reports whether a container of the pod spec exposes port, by
// name or by number.
func hasPort(ps *corev1.PodSpec, port intstr.IntOrString, protocol corev1.Protocol) bool {
	if protocol == "" {
		protocol = corev1.ProtocolTCP
	}
	for _, c := range ps.Containers {
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if proto != protocol {
				continue
			}
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return true
			}
		}
	}
	return false
}

func checkPorts(_ testing.TB, r *rendering) []error {
	var errs []error
	for _, s := range ofKind[*corev1.Service](r) {
		ws, err := r.selectedWorkloads(s.Namespace, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if err != nil {
			errs = append(errs, fmt.Errorf("Service/%s: %w", s.Name, err))
			continue
		}
		for _, w := range ws {
			for _, p := range s.Spec.Ports {
				target := p.TargetPort
				if target == (intstr.IntOrString{}) {
					target = intstr.FromInt32(p.Port)
				}
				if !hasPort(&w.Template.Spec, target, p.Protocol) {
					errs = append(errs, fmt.Errorf("Service/%s port %s: targetPort %s is no container port of %s", s.Name, p.Name, target.String(), w))
				}
			}
		}
	}
	for _, np := range ofKind[*networkingv1.NetworkPolicy](r) {
		ws, err := r.selectedWorkloads(np.Namespace, &np.Spec.PodSelector)
		if err != nil {
			errs = append(errs, fmt.Errorf("NetworkPolicy/%s: %w", np.Name, err))
			continue
		}
		for _, w := range ws {
			for _, in := range np.Spec.Ingress {
				for _, p := range in.Ports {
					proto := corev1.ProtocolTCP
					if p.Protocol != nil {
						proto = *p.Protocol
					}
					if p.Port == nil || !hasPort(&w.Template.Spec, *p.Port, proto) {
						errs = append(errs, fmt.Errorf("NetworkPolicy/%s admits port %v, which is no container port of %s", np.Name, p.Port, w))
					}
				}
			}
		}
	}
	return errs
}

// listenerPort returns the port of a host:port setting.
func listenerPort(c *corev1.Container, name, def string) (host string, port int32, err error) {
	v := def
	if e, ok := envVar(c, name); ok {
		if e.ValueFrom != nil {
			return "", 0, fmt.Errorf("%s must be a literal value", name)
		}
		v = e.Value
	}
	h, p, err := net.SplitHostPort(v)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", name, v, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", name, v, err)
	}
	return h, int32(n), nil
}

func containerPort(c *corev1.Container, name string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func checkListeners(t testing.TB, r *rendering) []error {
	var errs []error
	_, c := r.latchkey(t)
	for _, l := range []struct{ env, def, port string }{
		{"LATCHKEY_ADDR", ":8080", "http"},
		{"LATCHKEY_ADMIN_ADDR", "127.0.0.1:8081", "admin"},
	} {
		host, port, err := listenerPort(c, l.env, l.def)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if want, ok := containerPort(c, l.port); !ok || want != port {
			errs = append(errs, fmt.Errorf("%s listens on port %d, but the container port %s is %d", l.env, port, l.port, want))
		}
		if ip, err := netip.ParseAddr(host); host == "localhost" || (err == nil && ip.IsLoopback()) {
			errs = append(errs, fmt.Errorf("%s listens on %s: probes, Services and Prometheus cannot reach a loopback listener", l.env, host))
		}
	}
	return errs
}

var gomemlimitRE = regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`)

// parseGOMEMLIMIT reads a GOMEMLIMIT value as the Go runtime does.
func parseGOMEMLIMIT(s string) (int64, error) {
	m := gomemlimitRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("GOMEMLIMIT %q is not a number with an optional B, KiB, MiB, GiB or TiB", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	return n << shift, nil
}

func checkMemory(t testing.TB, r *rendering) []error {
	var errs []error
	_, c := r.latchkey(t)
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return []error{errors.New("the latchkey container has no memory limit")}
	}
	if req, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok || req.Cmp(limit) > 0 {
		errs = append(errs, fmt.Errorf("memory request %v must be set and at most the limit %v", req.String(), limit.String()))
	}
	e, ok := envVar(c, "GOMEMLIMIT")
	if !ok || e.ValueFrom != nil {
		// A resourceFieldRef would give the whole limit: no headroom.
		return append(errs, errors.New("GOMEMLIMIT must be a literal value below the memory limit"))
	}
	soft, err := parseGOMEMLIMIT(e.Value)
	if err != nil {
		return append(errs, err)
	}
	hard := limit.Value()
	if soft >= hard*95/100 || soft < hard*70/100 {
		errs = append(errs, fmt.Errorf("GOMEMLIMIT %s is %d%% of the memory limit %s; keep it at 70-95%% so the runtime collects before the OOM killer acts",
			e.Value, soft*100/hard, limit.String()))
	}
	hashMiB := int64(128)
	if e, ok := envVar(c, "LATCHKEY_HASH_MEMORY_MIB"); ok {
		if hashMiB, err = strconv.ParseInt(e.Value, 10, 64); err != nil {
			errs = append(errs, fmt.Errorf("LATCHKEY_HASH_MEMORY_MIB %q: %w", e.Value, err))
		}
	}
	if need := (baselineMiB + hashMiB) << 20; soft < need {
		errs = append(errs, fmt.Errorf("GOMEMLIMIT %s is below the %d MiB baseline plus LATCHKEY_HASH_MEMORY_MIB (%d MiB)", e.Value, baselineMiB, hashMiB))
	}
	return errs
}

// shutdownTimeout reads Latchkey's shutdown timeout from its source, so
// that a change there fails this check instead of silently outgrowing
// terminationGracePeriodSeconds.
var shutdownTimeout = sync.OnceValues(func() (time.Duration, error) {
	const file = "../cmd/latchkey/serve.go"
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		return 0, err
	}
	var d time.Duration
	var found error = fmt.Errorf("%s: no const shutdownTimeout = N * time.Second", file)
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "shutdownTimeout" || len(vs.Values) != 1 {
			return true
		}
		be, ok := vs.Values[0].(*ast.BinaryExpr)
		if !ok || be.Op != token.MUL {
			return false
		}
		lit, ok1 := be.X.(*ast.BasicLit)
		sel, ok2 := be.Y.(*ast.SelectorExpr)
		if !ok1 || !ok2 || lit.Kind != token.INT {
			return false
		}
		unit := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute}[sel.Sel.Name]
		count, err := strconv.Atoi(lit.Value)
		if err != nil || unit == 0 {
			return false
		}
		d, found = time.Duration(count)*unit, nil
		return false
	})
	return d, found
})

func checkGracefulStop(t testing.TB, r *rendering) []error {
	var errs []error
	d, c := r.latchkey(t)
	shutdown, err := shutdownTimeout()
	if err != nil {
		return []error{err}
	}
	var preStop time.Duration
	switch {
	case c.Lifecycle == nil || c.Lifecycle.PreStop == nil:
		errs = append(errs, errors.New("no preStop hook: the pod would stop before Services and ingresses forget it"))
	case c.Lifecycle.PreStop.Sleep != nil:
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		if preStop <= 0 {
			errs = append(errs, errors.New("preStop sleeps 0 s"))
		}
	case c.Lifecycle.PreStop.Exec != nil:
		// The image has no shell: an exec must run the binary itself.
		if cmd := c.Lifecycle.PreStop.Exec.Command; len(cmd) == 0 || !strings.HasPrefix(cmd[0], "/usr/local/bin/latchkey") {
			errs = append(errs, fmt.Errorf("preStop exec %q: the distroless image has no shell; use the sleep action", cmd))
		}
	default:
		errs = append(errs, errors.New("preStop is neither a sleep nor an exec"))
	}
	var drain time.Duration
	if e, ok := envVar(c, "LATCHKEY_DRAIN_DELAY"); !ok {
		errs = append(errs, errors.New("LATCHKEY_DRAIN_DELAY is not set"))
	} else if drain, err = time.ParseDuration(e.Value); err != nil || drain <= 0 {
		errs = append(errs, fmt.Errorf("LATCHKEY_DRAIN_DELAY %q is not a positive duration", e.Value))
	}
	gp := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	need := preStop + drain + shutdown
	if gp == nil || time.Duration(*gp)*time.Second <= need {
		errs = append(errs, fmt.Errorf("terminationGracePeriodSeconds %v must exceed preStop %v + drain delay %v + shutdown timeout %v = %v",
			ptrString(gp), preStop, drain, shutdown, need))
	}
	return errs
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// reference is one Secret or ConfigMap key a pod reads; an empty key means
// the whole object (envFrom, a volume without items).
type reference struct {
	kind, name, key, where string
	optional               bool
}

func podReferences(ps *corev1.PodSpec) []reference {
	var refs []reference
	opt := func(b *bool) bool { return b != nil && *b }
	for _, c := range slices.Concat(ps.InitContainers, ps.Containers) {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if s := e.ValueFrom.SecretKeyRef; s != nil {
				refs = append(refs, reference{"Secret", s.Name, s.Key, "env " + e.Name, opt(s.Optional)})
			}
			if s := e.ValueFrom.ConfigMapKeyRef; s != nil {
				refs = append(refs, reference{"ConfigMap", s.Name, s.Key, "env " + e.Name, opt(s.Optional)})
			}
		}
		for _, ef := range c.EnvFrom {
			if s := ef.SecretRef; s != nil {
				refs = append(refs, reference{"Secret", s.Name, "", "envFrom", opt(s.Optional)})
			}
			if s := ef.ConfigMapRef; s != nil {
				refs = append(refs, reference{"ConfigMap", s.Name, "", "envFrom", opt(s.Optional)})
			}
		}
	}
	for _, v := range ps.Volumes {
		var projections []corev1.VolumeProjection
		if s := v.Secret; s != nil {
			projections = append(projections, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: s.SecretName}, Items: s.Items, Optional: s.Optional}})
		}
		if s := v.ConfigMap; s != nil {
			projections = append(projections, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: s.LocalObjectReference, Items: s.Items, Optional: s.Optional}})
		}
		if v.Projected != nil {
			projections = append(projections, v.Projected.Sources...)
		}
		for _, p := range projections {
			kind, name, items, optional := "", "", []corev1.KeyToPath(nil), false
			switch {
			case p.Secret != nil:
				kind, name, items, optional = "Secret", p.Secret.Name, p.Secret.Items, opt(p.Secret.Optional)
			case p.ConfigMap != nil:
				kind, name, items, optional = "ConfigMap", p.ConfigMap.Name, p.ConfigMap.Items, opt(p.ConfigMap.Optional)
			default:
				continue
			}
			if len(items) == 0 {
				refs = append(refs, reference{kind, name, "", "volume " + v.Name, optional})
			}
			for _, it := range items {
				refs = append(refs, reference{kind, name, it.Key, "volume " + v.Name, optional})
			}
		}
	}
	return refs
}

func checkReferences(_ testing.TB, r *rendering) []error {
	var errs []error
	for _, w := range r.workloads() {
		for _, ref := range podReferences(&w.Template.Spec) {
			_, objFound, keyFound := r.lookupData(ref.kind, w.Namespace, ref.name, ref.key)
			if objFound && (ref.key == "" || keyFound) {
				continue
			}
			if ext, ok := r.external(ref.kind, ref.name); ok && (ref.key == "" || slices.Contains(ext.Keys, ref.key)) {
				continue // the operator's, documented in docs/operations.md
			}
			if ref.optional {
				continue
			}
			what := fmt.Sprintf("%s %s", ref.kind, ref.name)
			if objFound {
				what += fmt.Sprintf(" has no key %q", ref.key)
			} else {
				what += " is neither in the render nor listed as the operator's"
			}
			errs = append(errs, fmt.Errorf("%s %s: %s", w, ref.where, what))
		}
	}
	return errs
}

// mountedFile finds the volume that serves path in the container: a
// read-only directory mount (no subPath) of the Secret or ConfigMap
// volume whose items give the file's name a key.
func mountedFile(ps *corev1.PodSpec, c *corev1.Container, file string) (kind, name, key string, err error) {
	dir, base := path.Split(file)
	dir = path.Clean(dir)
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != dir {
			continue
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			return "", "", "", fmt.Errorf("%s is mounted with a subPath, which never sees a changed Secret or ConfigMap", dir)
		}
		if !m.ReadOnly {
			return "", "", "", fmt.Errorf("%s is not mounted readOnly", dir)
		}
		for _, v := range ps.Volumes {
			if v.Name != m.Name {
				continue
			}
			sources, err := volumeSources(v)
			if err != nil {
				return "", "", "", err
			}
			if len(sources) == 1 && len(sources[0].items) == 0 {
				return sources[0].kind, sources[0].name, base, nil
			}
			for _, src := range sources {
				for _, it := range src.items {
					if it.Path == base {
						return src.kind, src.name, it.Key, nil
					}
				}
			}
			return "", "", "", fmt.Errorf("volume %s projects no item at %s", v.Name, base)
		}
	}
	return "", "", "", fmt.Errorf("no volume is mounted at %s", dir)
}

// volumeSource is a Secret or ConfigMap whose keys a volume shows as files.
type volumeSource struct {
	kind, name string
	items      []corev1.KeyToPath
}

// volumeSources returns what a Secret, ConfigMap or projected volume
// shows. A projected source must list its items: with several sources, a
// file's origin must be plain.
func volumeSources(v corev1.Volume) ([]volumeSource, error) {
	switch {
	case v.Secret != nil:
		return []volumeSource{{"Secret", v.Secret.SecretName, v.Secret.Items}}, nil
	case v.ConfigMap != nil:
		return []volumeSource{{"ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items}}, nil
	case v.Projected != nil:
		var out []volumeSource
		for _, p := range v.Projected.Sources {
			var src volumeSource
			switch {
			case p.Secret != nil:
				src = volumeSource{"Secret", p.Secret.Name, p.Secret.Items}
			case p.ConfigMap != nil:
				src = volumeSource{"ConfigMap", p.ConfigMap.Name, p.ConfigMap.Items}
			default:
				return nil, fmt.Errorf("volume %s projects something other than a Secret or ConfigMap", v.Name)
			}
			if len(src.items) == 0 {
				return nil, fmt.Errorf("volume %s projects %s %s without items: list the files", v.Name, src.kind, src.name)
			}
			out = append(out, src)
		}
		return out, nil
	}
	return nil, fmt.Errorf("volume %s is neither a Secret, a ConfigMap nor a projection of them", v.Name)
}

// fileSecrets are the settings Latchkey re-reads from files, which the
// manifests must give as _FILE paths into a mounted Secret.
var fileSecrets = []string{"LATCHKEY_COOKIE_KEYS", "LATCHKEY_ADMIN_TOKEN", "LATCHKEY_METRICS_TOKEN"}

func checkSecrets(t testing.TB, r *rendering) []error {
	var errs []error
	d, c := r.latchkey(t)
	ps := &d.Spec.Template.Spec
	for _, name := range fileSecrets {
		if _, ok := envVar(c, name); ok {
			errs = append(errs, fmt.Errorf("%s is set: give %s_FILE, which Latchkey re-reads, so keys rotate without a restart", name, name))
		}
		e, ok := envVar(c, name+"_FILE")
		if !ok || e.ValueFrom != nil {
			errs = append(errs, fmt.Errorf("%s_FILE must be a literal path", name))
			continue
		}
		if !strings.HasPrefix(e.Value, secretDir+"/") {
			errs = append(errs, fmt.Errorf("%s_FILE %q is not under %s", name, e.Value, secretDir))
		}
		kind, _, _, err := mountedFile(ps, c, e.Value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
		} else if kind != "Secret" {
			errs = append(errs, fmt.Errorf("%s_FILE %s comes from a %s, not a Secret", name, e.Value, kind))
		}
	}
	if e, ok := envVar(c, "LATCHKEY_REDIS_URL"); !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		errs = append(errs, errors.New("LATCHKEY_REDIS_URL must come from a secretKeyRef: it may hold a password"))
	}
	if e, ok := envVar(c, "LATCHKEY_TENANTS_FILE"); !ok {
		errs = append(errs, errors.New("LATCHKEY_TENANTS_FILE is not set"))
	} else if kind, _, _, err := mountedFile(ps, c, e.Value); err != nil {
		errs = append(errs, fmt.Errorf("LATCHKEY_TENANTS_FILE: %w", err))
	} else if kind != "ConfigMap" {
		errs = append(errs, fmt.Errorf("LATCHKEY_TENANTS_FILE comes from a %s, not the tenants ConfigMap", kind))
	}
	// No literal that looks like a secret anywhere.
	for _, w := range r.workloads() {
		for _, c := range w.Template.Spec.Containers {
			for _, e := range c.Env {
				words := strings.Split(strings.ToUpper(e.Name), "_")
				secretish := slices.ContainsFunc(words, func(w string) bool {
					return w == "TOKEN" || w == "KEY" || w == "KEYS" || w == "PASSWORD" || w == "SECRET" || w == "URL"
				})
				if e.Value != "" && secretish && words[len(words)-1] != "FILE" {
					errs = append(errs, fmt.Errorf("%s container %s: %s has a literal value; use a Secret", w, c.Name, e.Name))
				}
			}
		}
	}
	return errs
}

// maxProxyBits bounds how broad one trusted-proxies entry may be: 2^8,
// 256 addresses, in either family. An ingress controller's own addresses
// (edge nodes, a dedicated IP pool, a load balancer's few) fit; a pod or
// node range, whose every pod could then forge X-Forwarded-For, does not.
const maxProxyBits = 8

// checkProxies reports why a trusted-proxies value is not a list of a
// few, narrow proxy addresses.
func checkProxies(v string) []error {
	var errs []error
	n := 0
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n++
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("LATCHKEY_TRUSTED_PROXIES: %q is not a CIDR or an IP address", p))
				continue
			}
			prefix = netip.PrefixFrom(a, a.BitLen())
		}
		switch host := prefix.Addr().BitLen() - prefix.Bits(); {
		case prefix.Bits() == 0:
			errs = append(errs, fmt.Errorf("LATCHKEY_TRUSTED_PROXIES: %s trusts every address: any client could name any address", p))
		case host > maxProxyBits:
			errs = append(errs, fmt.Errorf("LATCHKEY_TRUSTED_PROXIES: %s spans 2^%d addresses, a pod or node range (every pod in it could forge X-Forwarded-For); list the ingress controller's own addresses, at most /%d per entry",
				p, host, prefix.Addr().BitLen()-maxProxyBits))
		}
	}
	if n == 0 {
		errs = append(errs, errors.New("LATCHKEY_TRUSTED_PROXIES is empty: behind an ingress, every client would share its address"))
	}
	return errs
}

func checkTrustedProxies(t testing.TB, r *rendering) []error {
	d, c := r.latchkey(t)
	e, ok := envVar(c, "LATCHKEY_TRUSTED_PROXIES")
	if !ok || e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
		return []error{errors.New("LATCHKEY_TRUSTED_PROXIES must come from a ConfigMap (configMapKeyRef)")}
	}
	ref := e.ValueFrom.ConfigMapKeyRef
	v, _, ok := r.lookupData("ConfigMap", d.Namespace, ref.Name, ref.Key)
	if !ok {
		return nil // checkReferences reports it
	}
	switch r.proxies {
	case proxiesNone:
		if strings.TrimSpace(v) != "" {
			return []error{fmt.Errorf("LATCHKEY_TRUSTED_PROXIES %q in a render that nothing proxies: trust no one", v)}
		}
	case proxiesPlaceholder:
		if v != trustedProxiesPlaceholder {
			return []error{fmt.Errorf("LATCHKEY_TRUSTED_PROXIES %q: the operator sets it; until then it must be %q, which Latchkey refuses at start-up", v, trustedProxiesPlaceholder)}
		}
	case proxiesSet:
		return checkProxies(v)
	}
	return nil
}

func portIs(p networkingv1.NetworkPolicyPort, port intstr.IntOrString, proto corev1.Protocol) bool {
	got := corev1.ProtocolTCP
	if p.Protocol != nil {
		got = *p.Protocol
	}
	return p.Port != nil && *p.Port == port && got == proto
}

// A peer is a source of traffic that the network policy must admit or
// refuse: a pod (with its namespace's labels) or an address outside the
// cluster.
type peer struct {
	what      string
	namespace string // "" outside the cluster
	podLabels map[string]string
	ip        netip.Addr // outside the cluster
}

func podIn(what, namespace string, podLabels map[string]string) peer {
	return peer{what: what, namespace: namespace, podLabels: podLabels}
}

// nsLabels are the labels Kubernetes gives every namespace.
func (p peer) nsLabels() labels.Set {
	return labels.Set{"kubernetes.io/metadata.name": p.namespace}
}

// matches reports whether a label selector matches; an empty one matches
// everything, as in a NetworkPolicy.
func matches(sel *metav1.LabelSelector, set labels.Set) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(set)
}

// peerMatches reports whether a policy peer covers p, for a policy in
// namespace ns.
func peerMatches(np networkingv1.NetworkPolicyPeer, ns string, p peer) bool {
	switch {
	case np.IPBlock != nil:
		if p.namespace != "" {
			return false // for pods, what an ipBlock covers depends on the CNI
		}
		cidr, err := netip.ParsePrefix(np.IPBlock.CIDR)
		if err != nil || !cidr.Contains(p.ip) {
			return false
		}
		for _, e := range np.IPBlock.Except {
			if ex, err := netip.ParsePrefix(e); err == nil && ex.Contains(p.ip) {
				return false
			}
		}
		return true
	case p.namespace == "":
		return false
	case np.NamespaceSelector == nil:
		return p.namespace == ns && np.PodSelector != nil && matches(np.PodSelector, p.podLabels)
	default:
		return matches(np.NamespaceSelector, p.nsLabels()) && (np.PodSelector == nil || matches(np.PodSelector, p.podLabels))
	}
}

// portMatches reports whether a policy port covers the container port.
func portMatches(pp networkingv1.NetworkPolicyPort, cp corev1.ContainerPort) bool {
	proto, cproto := corev1.ProtocolTCP, corev1.ProtocolTCP
	if pp.Protocol != nil {
		proto = *pp.Protocol
	}
	if cp.Protocol != "" {
		cproto = cp.Protocol
	}
	switch {
	case proto != cproto:
		return false
	case pp.Port == nil:
		return true
	case pp.Port.Type == intstr.String:
		return pp.Port.StrVal == cp.Name
	case pp.EndPort != nil:
		return pp.Port.IntVal <= cp.ContainerPort && cp.ContainerPort <= *pp.EndPort
	default:
		return pp.Port.IntVal == cp.ContainerPort
	}
}

// admits reports whether the ingress rules of np let p reach the
// container port cp.
func admits(np *networkingv1.NetworkPolicy, cp corev1.ContainerPort, p peer) bool {
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) > 0 && !slices.ContainsFunc(rule.Ports, func(pp networkingv1.NetworkPolicyPort) bool { return portMatches(pp, cp) }) {
			continue
		}
		if len(rule.From) == 0 || slices.ContainsFunc(rule.From, func(f networkingv1.NetworkPolicyPeer) bool { return peerMatches(f, np.Namespace, p) }) {
			return true
		}
	}
	return false
}

func checkNetworkPolicy(t testing.TB, r *rendering) []error {
	var errs []error
	d, c := r.latchkey(t)
	var np *networkingv1.NetworkPolicy
	for _, p := range ofKind[*networkingv1.NetworkPolicy](r) {
		if ok, _ := selects(&p.Spec.PodSelector, d.Spec.Template.Labels); ok && p.Namespace == d.Namespace {
			np = p
		}
	}
	if np == nil {
		return []error{errors.New("no NetworkPolicy selects the latchkey pods")}
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		errs = append(errs, fmt.Errorf("policyTypes %v: want Ingress and Egress", np.Spec.PolicyTypes))
	}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if !portIs(p, intstr.FromString("http"), corev1.ProtocolTCP) && !portIs(p, intstr.FromString("admin"), corev1.ProtocolTCP) {
				errs = append(errs, fmt.Errorf("ingress admits port %v, which is neither http nor admin", p.Port))
			}
		}
		if len(rule.Ports) == 0 {
			errs = append(errs, errors.New("an ingress rule without ports admits every port, the admin one included"))
		}
	}
	port := func(name string) corev1.ContainerPort {
		i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("the latchkey container has no port %s", name))
			return corev1.ContainerPort{}
		}
		return c.Ports[i]
	}
	public, admin := port("http"), port("admin")
	ns := d.Namespace
	// Who must reach what, in the layout docs/operations.md documents:
	// Prometheus as the Prometheus Operator labels it, in the namespace
	// monitoring; Latchkey's own admin clients; an ingress controller.
	prometheus := podIn("Prometheus", "monitoring", map[string]string{"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"})
	adminClient := podIn("an admin client in Latchkey's namespace", ns, map[string]string{"app.kubernetes.io/part-of": "latchkey", "app.kubernetes.io/component": "admin-client"})
	ingress := podIn("the ingress controller", "ingress-nginx", map[string]string{"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"})
	for _, p := range []peer{prometheus, adminClient} {
		if !admits(np, admin, p) {
			errs = append(errs, fmt.Errorf("the admin port does not admit %s", p.what))
		}
	}
	if !admits(np, public, ingress) {
		errs = append(errs, fmt.Errorf("the public port does not admit %s", ingress.what))
	}
	for _, p := range []peer{
		ingress,
		podIn("a pod of another namespace", "default", map[string]string{"app": "web"}),
		podIn("a pod labelled as Prometheus in another namespace", "team-a", map[string]string{"app.kubernetes.io/name": "prometheus"}),
		podIn("another pod of the namespace monitoring", "monitoring", map[string]string{"app.kubernetes.io/name": "grafana"}),
		podIn("another pod of Latchkey's namespace", ns, map[string]string{"app.kubernetes.io/name": "redis", "app.kubernetes.io/part-of": "latchkey"}),
		podIn("an admin client of another namespace", "team-a", map[string]string{"app.kubernetes.io/part-of": "latchkey", "app.kubernetes.io/component": "admin-client"}),
		{what: "an address outside the cluster", ip: netip.MustParseAddr("203.0.113.7")},
	} {
		if admits(np, admin, p) {
			errs = append(errs, fmt.Errorf("the admin port admits %s; admit Prometheus and Latchkey's admin clients only", p.what))
		}
	}
	for _, want := range []struct {
		port  int32
		proto corev1.Protocol
		what  string
	}{{6379, corev1.ProtocolTCP, "Redis"}, {26379, corev1.ProtocolTCP, "Redis Sentinel"}, {53, corev1.ProtocolUDP, "DNS"}, {53, corev1.ProtocolTCP, "DNS over TCP"}} {
		ok := slices.ContainsFunc(np.Spec.Egress, func(rule networkingv1.NetworkPolicyEgressRule) bool {
			return slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool {
				return portIs(p, intstr.FromInt32(want.port), want.proto)
			})
		})
		if !ok {
			errs = append(errs, fmt.Errorf("egress to %d/%s (%s) is not allowed", want.port, want.proto, want.what))
		}
	}
	for _, rule := range np.Spec.Egress {
		if len(rule.Ports) == 0 {
			errs = append(errs, errors.New("an egress rule without ports allows everything"))
		}
	}
	return errs
}

func checkTopologySpread(t testing.TB, r *rendering) []error {
	var errs []error
	d, _ := r.latchkey(t)
	for _, key := range []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"} {
		i := slices.IndexFunc(d.Spec.Template.Spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool { return c.TopologyKey == key })
		if i < 0 {
			errs = append(errs, fmt.Errorf("no topologySpreadConstraint over %s", key))
			continue
		}
		c := d.Spec.Template.Spec.TopologySpreadConstraints[i]
		if ok, err := selects(c.LabelSelector, d.Spec.Template.Labels); err != nil || !ok {
			errs = append(errs, fmt.Errorf("the %s spread constraint's selector does not select latchkey's pods (%v)", key, err))
		}
		if c.MaxSkew < 1 {
			errs = append(errs, fmt.Errorf("the %s spread constraint has maxSkew %d", key, c.MaxSkew))
		}
	}
	return errs
}

func checkServiceMonitor(t testing.TB, r *rendering) []error {
	var errs []error
	d, c := r.latchkey(t)
	// The Secret and key Latchkey reads its metrics token from.
	var tokenSecret, tokenKey string
	if e, ok := envVar(c, "LATCHKEY_METRICS_TOKEN_FILE"); ok {
		if kind, name, key, err := mountedFile(&d.Spec.Template.Spec, c, e.Value); err == nil && kind == "Secret" {
			tokenSecret, tokenKey = name, key
		}
	}
	for _, sm := range ofKind[*serviceMonitor](r) {
		if sm.Spec.NamespaceSelector != nil {
			errs = append(errs, fmt.Errorf("ServiceMonitor/%s: namespaceSelector: keep it beside the Service it scrapes", sm.Name))
		}
		var svc *corev1.Service
		for _, s := range ofKind[*corev1.Service](r) {
			if ok, _ := selects(&sm.Spec.Selector, s.Labels); ok && s.Namespace == sm.Namespace {
				if svc != nil {
					errs = append(errs, fmt.Errorf("ServiceMonitor/%s selects several Services", sm.Name))
				}
				svc = s
			}
		}
		if svc == nil {
			errs = append(errs, fmt.Errorf("ServiceMonitor/%s selects no Service in namespace %q", sm.Name, sm.Namespace))
			continue
		}
		if len(sm.Spec.Endpoints) == 0 {
			errs = append(errs, fmt.Errorf("ServiceMonitor/%s has no endpoints", sm.Name))
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Port != "admin" || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				errs = append(errs, fmt.Errorf("ServiceMonitor/%s scrapes port %q; want the Service's port named admin", sm.Name, ep.Port))
			}
			if ep.Path != "/metrics" {
				errs = append(errs, fmt.Errorf("ServiceMonitor/%s scrapes %q, want /metrics", sm.Name, ep.Path))
			}
			if _, err := time.ParseDuration(ep.Interval); ep.Interval != "" && err != nil {
				errs = append(errs, fmt.Errorf("ServiceMonitor/%s interval %q: %w", sm.Name, ep.Interval, err))
			}
			a := ep.Authorization
			switch {
			case a == nil || a.Credentials == nil:
				errs = append(errs, fmt.Errorf("ServiceMonitor/%s scrapes without a token: /metrics requires LATCHKEY_METRICS_TOKEN's", sm.Name))
			case a.Type != "" && a.Type != "Bearer":
				errs = append(errs, fmt.Errorf("ServiceMonitor/%s authorization type %q, want Bearer", sm.Name, a.Type))
			case a.Credentials.Name != tokenSecret || a.Credentials.Key != tokenKey:
				errs = append(errs, fmt.Errorf("ServiceMonitor/%s sends Secret %s key %s, but Latchkey reads its metrics token from Secret %q key %q",
					sm.Name, a.Credentials.Name, a.Credentials.Key, tokenSecret, tokenKey))
			default:
				_, _, found := r.lookupData("Secret", sm.Namespace, tokenSecret, tokenKey)
				if ext, ok := r.external("Secret", tokenSecret); !found && (!ok || !slices.Contains(ext.Keys, tokenKey)) {
					errs = append(errs, fmt.Errorf("ServiceMonitor/%s: Secret %s key %s is neither in the render nor the operator's", sm.Name, tokenSecret, tokenKey))
				}
			}
		}
	}
	return errs
}

// clusterScoped lists the kinds with no namespace.
var clusterScoped = map[string]bool{"Namespace": true}

func checkNamespaces(_ testing.TB, r *rendering) []error {
	var errs []error
	namespaces := map[string]bool{}
	for _, o := range r.objects {
		if clusterScoped[o.Kind] {
			if o.Namespace != "" {
				errs = append(errs, fmt.Errorf("%s is cluster-scoped but has a namespace", o))
			}
			continue
		}
		namespaces[o.Namespace] = true
	}
	if len(namespaces) != 1 || namespaces[""] {
		return append(errs, fmt.Errorf("objects are in namespaces %v; an overlay puts everything in one, named", namespaces))
	}
	for ns := range namespaces {
		found := false
		for _, n := range ofKind[*corev1.Namespace](r) {
			if n.Name != ns {
				continue
			}
			found = true
			if n.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				errs = append(errs, fmt.Errorf("Namespace/%s does not enforce the restricted Pod Security Standard", ns))
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("the render has no Namespace %s", ns))
		}
	}
	return errs
}

// TestParseGOMEMLIMIT pins the parser the memory rule relies on.
func TestParseGOMEMLIMIT(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"230MiB", 230 << 20, false},
		{"1GiB", 1 << 30, false},
		{"1000", 1000, false},
		{"230Mi", 0, true},
		{"230MB", 0, true},
		{"", 0, true},
	} {
		got, err := parseGOMEMLIMIT(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseGOMEMLIMIT(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	// The Kubernetes quantity and the Go unit must not be confused.
	if q := resource.MustParse("256Mi"); q.Value() != 256<<20 {
		t.Fatalf("256Mi = %d", q.Value())
	}
}

func TestImageCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		image string
		ok    bool
	}{
		{"latchkey:dev", true},
		{"ghcr.io/latchkeyhq/latchkey:v0.1.0", true},
		{"registry:5000/latchkey@sha256:" + strings.Repeat("a", 64), true},
		{"registry:5000/latchkey", false},
		{"redis", false},
		{"redis:latest", false},
		{"latchkey@sha256:abc", false},
	} {
		if err := checkImage(tt.image); (err == nil) != tt.ok {
			t.Errorf("checkImage(%q) = %v, want ok %v", tt.image, err, tt.ok)
		}
	}
}
