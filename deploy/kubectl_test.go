package deploy

import (
	"bytes"
	"context"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestKubectlKustomizeAgrees renders each overlay with `kubectl kustomize`
// too, when kubectl is installed, and expects the same objects: what an
// operator applies is what the rules above checked. kubectl embeds its own
// Kustomize version; a difference here is worth reading before an upgrade.
// It needs no cluster and no network (every resource is local).
func TestKubectlKustomizeAgrees(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; the in-process render is checked regardless")
	}
	for _, spec := range renderings {
		t.Run(spec.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, kubectl, "kustomize", spec.dir)
			// No kubeconfig: kustomize must not need a cluster.
			cmd.Env = append(cmd.Environ(), "KUBECONFIG=/dev/null")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", spec.dir, err, stderr.String())
			}
			theirs := map[string]any{}
			for doc := range strings.SplitSeq(string(out), "\n---\n") {
				if strings.TrimSpace(doc) == "" {
					continue
				}
				var m map[string]any
				if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
					t.Fatalf("kubectl output: %v", err)
				}
				theirs[objectKey(m)] = m
			}
			ours := map[string]any{}
			for _, o := range render(t, spec).objects {
				var m map[string]any
				if err := yaml.Unmarshal(o.YAML, &m); err != nil {
					t.Fatal(err)
				}
				ours[objectKey(m)] = m
			}
			for k, v := range ours {
				w, ok := theirs[k]
				switch {
				case !ok:
					t.Errorf("%s: rendered in-process, missing from kubectl kustomize", k)
				case !reflect.DeepEqual(v, w):
					a, _ := yaml.Marshal(v)
					b, _ := yaml.Marshal(w)
					t.Errorf("%s differs:\nin-process:\n%s\nkubectl:\n%s", k, a, b)
				}
			}
			for k := range theirs {
				if _, ok := ours[k]; !ok {
					t.Errorf("%s: rendered by kubectl kustomize only", k)
				}
			}
		})
	}
}

func objectKey(m map[string]any) string {
	meta, _ := m["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	return strings.Join([]string{m["apiVersion"].(string), m["kind"].(string), ns, name}, " ")
}
