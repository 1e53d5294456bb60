package kubernetes_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/envelopecodec/envelope/deploy/internal/serverflags"
)

// cert-manager.io/v1 has no types in k8s.io/api; these cover the fields the
// manifests use, and strict decoding rejects any other.
type certificate struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		SecretName  string           `json:"secretName"`
		Duration    *metav1.Duration `json:"duration,omitempty"`
		RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
		CommonName  string           `json:"commonName,omitempty"`
		DNSNames    []string         `json:"dnsNames,omitempty"`
		IPAddresses []string         `json:"ipAddresses,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			Encoding       string `json:"encoding,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		Usages    []string `json:"usages,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

type issuer struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		CA *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
	} `json:"spec"`
}

// decodeStrict decodes one manifest into the Go type of its apiVersion and
// kind, failing on unknown or duplicate fields, so a typo in a field name
// fails the test instead of being dropped by the API server.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		obj = &autoscalingv2.HorizontalPodAutoscaler{}
	case "policy/v1/PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1/NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	case "cert-manager.io/v1/Certificate":
		obj = &certificate{}
	case "cert-manager.io/v1/Issuer":
		obj = &issuer{}
	case "kustomize.config.k8s.io/v1beta1/Kustomization", "kustomize.config.k8s.io/v1alpha1/Component":
		obj = &kusttypes.Kustomization{}
	default:
		return nil, fmt.Errorf("unexpected kind %s %s", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// dropPatchDirectives removes strategic-merge-patch directives ($patch,
// $setElementOrder, ...), which are not fields of the API types.
func dropPatchDirectives(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if strings.HasPrefix(k, "$") {
				delete(v, k)
				continue
			}
			v[k] = dropPatchDirectives(e)
		}
	case []any:
		for i, e := range v {
			v[i] = dropPatchDirectives(e)
		}
	}
	return v
}

// TestEveryFileDecodes decodes every YAML file under deploy/kubernetes,
// patches included, into its API type.
func TestEveryFileDecodes(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, doc := range bytes.Split(data, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			n++
			if strings.HasSuffix(p, "-patch.yaml") {
				var m any
				if err := yaml.Unmarshal(doc, &m); err != nil {
					t.Errorf("%s document %d: %v", p, i, err)
					continue
				}
				if doc, err = yaml.Marshal(dropPatchDirectives(m)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := decodeStrict(doc); err != nil {
				t.Errorf("%s document %d: %v", p, i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("decoded %d documents, want every manifest (at least 10)", n)
	}
}

// manifests is one kustomize build, decoded.
type manifests struct {
	all        []any
	deployment *appsv1.Deployment
	service    *corev1.Service
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	pdb        *policyv1.PodDisruptionBudget
	netpol     *networkingv1.NetworkPolicy
	account    *corev1.ServiceAccount
	configMaps map[string]*corev1.ConfigMap
	cert       *certificate
	issuer     *issuer
}

// build runs kustomize (the library behind kubectl apply -k) on a copy of
// this folder, after applying edit (if not nil) to the kustomization.yaml
// text.
func build(t *testing.T, edit func(string) string) *manifests {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if p == "kustomization.yaml" && edit != nil {
			edited := edit(string(data))
			if edited == string(data) {
				return fmt.Errorf("the edit did not change kustomization.yaml")
			}
			data = []byte(edited)
		}
		return mem.WriteFile(path.Join("/k", filepath.ToSlash(p)), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/k")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}}
	for _, r := range rm.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatalf("built %s: %v", r.CurId(), err)
		}
		m.all = append(m.all, obj)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployment = o
		case *corev1.Service:
			m.service = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpa = o
		case *policyv1.PodDisruptionBudget:
			m.pdb = o
		case *networkingv1.NetworkPolicy:
			m.netpol = o
		case *corev1.ServiceAccount:
			m.account = o
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *certificate:
			m.cert = o
		case *issuer:
			m.issuer = o
		}
	}
	for name, v := range map[string]bool{
		"Deployment": m.deployment != nil, "Service": m.service != nil, "HorizontalPodAutoscaler": m.hpa != nil,
		"PodDisruptionBudget": m.pdb != nil, "NetworkPolicy": m.netpol != nil, "ServiceAccount": m.account != nil,
		"Certificate": m.cert != nil, "Issuer": m.issuer != nil,
	} {
		if !v {
			t.Fatalf("the build has no %s", name)
		}
	}
	return m
}

func enableVault(s string) string {
	return strings.Replace(s, "# components:\n#   - components/vault", "components:\n  - components/vault", 1)
}

var variants = []struct {
	name  string
	edit  func(string) string
	vault bool
}{
	{"key file from a Secret", nil, false},
	{"Vault transit with Kubernetes auth", enableVault, true},
}

func container(t *testing.T, m *manifests) corev1.Container {
	t.Helper()
	cs := m.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("got %d containers, want 1", len(cs))
	}
	return cs[0]
}

// flagValues returns --name=value arguments as a map.
func flagValues(t *testing.T, args []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("argument %q: want --flag=value", a)
			continue
		}
		if !serverflags.IsFlag(name) {
			t.Errorf("argument %q: no such codec-server flag", a)
		}
		out[name] = value
	}
	return out
}

// environment resolves the container's environment: envFrom ConfigMaps
// (which must exist in the build) and env entries.
func environment(t *testing.T, m *manifests, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Errorf("envFrom %+v: want configMapRef", ef)
			continue
		}
		cm, ok := m.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			t.Errorf("envFrom ConfigMap %q is not in the build", ef.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			out[k] = v
		}
	}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

func TestSecurity(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			m := build(t, v.edit)
			pod := m.deployment.Spec.Template.Spec
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Error("pod: runAsNonRoot is not true")
			}
			if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("pod: seccompProfile is not RuntimeDefault")
			}
			if pod.HostNetwork || pod.HostPID || pod.HostIPC {
				t.Error("pod shares a host namespace")
			}
			for _, c := range append(pod.InitContainers, pod.Containers...) {
				sc := c.SecurityContext
				if sc == nil {
					t.Fatalf("%s: no securityContext", c.Name)
				}
				for _, check := range []struct {
					what string
					ok   bool
				}{
					{"runAsNonRoot true", sc.RunAsNonRoot != nil && *sc.RunAsNonRoot},
					{"runAsUser non-zero", sc.RunAsUser != nil && *sc.RunAsUser != 0},
					{"readOnlyRootFilesystem true", sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem},
					{"allowPrivilegeEscalation false", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
					{"privileged not true", sc.Privileged == nil || !*sc.Privileged},
					{"capabilities drop ALL, add none", sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0},
					{"seccompProfile RuntimeDefault", sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
				} {
					if !check.ok {
						t.Errorf("%s: want %s", c.Name, check.what)
					}
				}
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
					if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
						t.Errorf("%s: %s request %s limit %s, want both set and request <= limit", c.Name, r, req.String(), lim.String())
					}
				}
			}
			for _, vol := range pod.Volumes {
				if vol.HostPath != nil {
					t.Errorf("volume %s is a hostPath", vol.Name)
				}
			}
			for _, obj := range m.all {
				if _, ok := obj.(*corev1.Secret); ok {
					t.Error("the manifests carry a Secret: keys are created out of band, never committed")
				}
			}
		})
	}
}

func TestProbes(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			m := build(t, v.edit)
			c := container(t, m)
			flags := flagValues(t, c.Args)
			wantScheme := corev1.URISchemeHTTP
			if flags["tls-cert"] != "" {
				wantScheme = corev1.URISchemeHTTPS
			}
			for _, tc := range []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{
				{"startup", c.StartupProbe, serverflags.HealthPath},
				{"liveness", c.LivenessProbe, serverflags.HealthPath},
				{"readiness", c.ReadinessProbe, serverflags.ReadyPath},
			} {
				if tc.probe == nil || tc.probe.HTTPGet == nil {
					t.Errorf("%s probe: want an httpGet probe", tc.name)
					continue
				}
				g := tc.probe.HTTPGet
				if g.Path != tc.path {
					t.Errorf("%s probe path %q, want %q", tc.name, g.Path, tc.path)
				}
				if g.Scheme != wantScheme {
					t.Errorf("%s probe scheme %q, want %q (the server serves TLS iff --tls-cert is set)", tc.name, g.Scheme, wantScheme)
				}
				if port := containerPort(c, g.Port.String()); port != serverflags.Port {
					t.Errorf("%s probe port %s is container port %d, want %d", tc.name, g.Port.String(), port, serverflags.Port)
				}
			}
		})
	}
}

// containerPort resolves a port name or number to the container port.
func containerPort(c corev1.Container, nameOrNumber string) int32 {
	for _, p := range c.Ports {
		if p.Name == nameOrNumber || fmt.Sprint(p.ContainerPort) == nameOrNumber {
			return p.ContainerPort
		}
	}
	return 0
}

// TestWiring checks that the objects agree: labels, selectors, ports and
// names across Deployment, Service, NetworkPolicy, PDB and HPA.
func TestWiring(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			m := build(t, v.edit)
			d := m.deployment
			c := container(t, m)
			podLabels := labels.Set(d.Spec.Template.Labels)

			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(podLabels) {
				t.Fatalf("Deployment selector %v does not select its own pods %v (err %v)", d.Spec.Selector, podLabels, err)
			}
			if len(d.Spec.Selector.MatchLabels) != len(podLabels) {
				t.Errorf("pod labels %v are not exactly the selector %v", podLabels, d.Spec.Selector.MatchLabels)
			}
			if env := environment(t, m, c); env["CODEC_SERVER_LISTEN"] != serverflags.ContainerListen {
				t.Errorf("CODEC_SERVER_LISTEN=%q, want %q", env["CODEC_SERVER_LISTEN"], serverflags.ContainerListen)
			}
			if containerPort(c, fmt.Sprint(serverflags.Port)) == 0 {
				t.Errorf("container ports %+v lack %d", c.Ports, serverflags.Port)
			}

			t.Run("Service", func(t *testing.T) {
				s := m.service
				if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
					t.Errorf("Service selector %v does not select the pods %v", s.Spec.Selector, podLabels)
				}
				if len(s.Spec.Ports) == 0 {
					t.Fatal("Service has no ports")
				}
				for _, p := range s.Spec.Ports {
					if containerPort(c, p.TargetPort.String()) != serverflags.Port {
						t.Errorf("Service port %d targets %s, not the container's %d", p.Port, p.TargetPort.String(), serverflags.Port)
					}
				}
				if s.Spec.Type != corev1.ServiceTypeClusterIP && s.Spec.Type != "" {
					t.Errorf("Service type %s, want ClusterIP (expose through your gateway)", s.Spec.Type)
				}
			})

			t.Run("NetworkPolicy", func(t *testing.T) {
				np := m.netpol
				sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
				if err != nil || sel.Empty() || !sel.Matches(podLabels) {
					t.Errorf("NetworkPolicy podSelector %v does not select the pods", np.Spec.PodSelector)
				}
				if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
					t.Errorf("policyTypes %v lack Ingress", np.Spec.PolicyTypes)
				}
				if len(np.Spec.Ingress) == 0 {
					t.Fatal("no ingress rules: nothing could reach the server")
				}
				for i, rule := range np.Spec.Ingress {
					if len(rule.From) == 0 {
						t.Errorf("rule %d admits every source", i)
					}
					for _, peer := range rule.From {
						if peer.IPBlock != nil || peer.PodSelector == nil || len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0 {
							t.Errorf("rule %d peer %+v: want a non-empty pod selector", i, peer)
						}
						if peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels)+len(peer.NamespaceSelector.MatchExpressions) == 0 {
							t.Errorf("rule %d peer admits matching pods in every namespace", i)
						}
					}
					if len(rule.Ports) == 0 {
						t.Errorf("rule %d admits every port", i)
					}
					for _, p := range rule.Ports {
						if p.Port == nil || containerPort(c, p.Port.String()) != serverflags.Port {
							t.Errorf("rule %d port %v is not the server's %d", i, p.Port, serverflags.Port)
						}
					}
				}
			})

			t.Run("PodDisruptionBudget and HPA", func(t *testing.T) {
				sel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector)
				if err != nil || sel.Empty() || !sel.Matches(podLabels) {
					t.Errorf("PDB selector %v does not select the pods", m.pdb.Spec.Selector)
				}
				ref := m.hpa.Spec.ScaleTargetRef
				if ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
					t.Errorf("HPA targets %+v, want apps/v1 Deployment %s", ref, d.Name)
				}
				minReplicas := int32(1)
				if m.hpa.Spec.MinReplicas != nil {
					minReplicas = *m.hpa.Spec.MinReplicas
				}
				if minReplicas < 2 || m.hpa.Spec.MaxReplicas < minReplicas {
					t.Errorf("HPA replicas %d..%d, want at least 2 for availability", minReplicas, m.hpa.Spec.MaxReplicas)
				}
				// A PDB that allows no disruption with the fewest replicas
				// blocks node drains.
				if ma := m.pdb.Spec.MinAvailable; ma == nil || ma.IntValue() >= int(minReplicas) {
					t.Errorf("PDB minAvailable %v with HPA minReplicas %d blocks every eviction", ma, minReplicas)
				}
				for _, metric := range m.hpa.Spec.Metrics {
					if metric.Resource != nil && metric.Resource.Target.Type == autoscalingv2.UtilizationMetricType {
						if q := c.Resources.Requests[metric.Resource.Name]; q.IsZero() {
							t.Errorf("HPA scales on %s utilization but the container requests none", metric.Resource.Name)
						}
					}
				}
			})

			t.Run("namespace and service account", func(t *testing.T) {
				for _, obj := range m.all {
					if o, ok := obj.(metav1.Object); ok && o.GetNamespace() != "temporal" {
						t.Errorf("%T %s in namespace %q, want temporal", obj, o.GetName(), o.GetNamespace())
					}
				}
				if m.cert.Metadata.Namespace != "temporal" || m.issuer.Metadata.Namespace != "temporal" {
					t.Errorf("Certificate and Issuer in %q and %q, want temporal", m.cert.Metadata.Namespace, m.issuer.Metadata.Namespace)
				}
				if d.Spec.Template.Spec.ServiceAccountName != m.account.Name {
					t.Errorf("pod runs as %q, the ServiceAccount is %q", d.Spec.Template.Spec.ServiceAccountName, m.account.Name)
				}
			})
		})
	}
}

// mountFor returns the volume whose mount holds file, and the mount.
func mountFor(pod corev1.PodSpec, c corev1.Container, file string) (*corev1.Volume, *corev1.VolumeMount) {
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		if strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			for j := range pod.Volumes {
				if pod.Volumes[j].Name == vm.Name {
					return &pod.Volumes[j], vm
				}
			}
			return nil, vm
		}
	}
	return nil, nil
}

// TestKeyringAndTLS checks that the file flags point into the mounted
// Secrets: the key file, cert-manager's certificate, and for Vault its CA
// and Kubernetes auth settings.
func TestKeyringAndTLS(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			m := build(t, v.edit)
			pod := m.deployment.Spec.Template.Spec
			c := container(t, m)
			flags := flagValues(t, c.Args)
			env := environment(t, m, c)

			for k := range env {
				if _, ok := serverflags.FlagForEnv(k); !ok && k != "GOMEMLIMIT" {
					t.Errorf("environment variable %s is not the twin of any codec-server flag", k)
				}
			}
			for _, o := range strings.Split(env["CODEC_SERVER_CORS_ORIGIN"], ",") {
				if !strings.HasPrefix(o, "https://") || strings.Contains(o, "*") {
					t.Errorf("CORS origin %q: want an exact https origin (the UI passes tokens only over https)", o)
				}
			}
			if env["CODEC_SERVER_INSECURE_NO_AUTH"] != "" || flags["insecure-no-auth"] != "" {
				t.Error("--insecure-no-auth in a production manifest")
			}
			// The server counts JWT, or client certificates mapped to
			// permissions, as authentication; a client CA alone is not.
			mtlsAuth := flags["tls-client-ca"] != "" && flags["client-permission"] != ""
			if env["CODEC_SERVER_OIDC_ISSUER"] == "" && env["CODEC_SERVER_JWKS_URL"] == "" && !mtlsAuth {
				t.Error("no JWT key source and no client certificates mapped to permissions: the server would have no authentication")
			}

			// Every file flag lies in a read-only mount of a whole volume:
			// a subPath mount never sees the kubelet's updates, so rotated
			// keys and renewed certificates would not reach the server.
			files := map[string]string{}
			for _, f := range []string{"keys-file", "tls-cert", "tls-key", "tls-client-ca", "jwks-file"} {
				if p := flags[f]; p != "" {
					files[f] = p
				}
			}
			if p := env["VAULT_CACERT"]; p != "" {
				files["vault-cacert"] = p
			}
			for f, p := range files {
				vol, vm := mountFor(pod, c, p)
				if vol == nil {
					t.Errorf("--%s=%s is not inside a mounted volume", f, p)
					continue
				}
				if !vm.ReadOnly || vm.SubPath != "" {
					t.Errorf("--%s: mount %s readOnly %v subPath %q, want read-only without subPath", f, vm.MountPath, vm.ReadOnly, vm.SubPath)
				}
			}

			t.Run("TLS from cert-manager", func(t *testing.T) {
				for _, f := range []string{"tls-cert", "tls-key"} {
					vol, _ := mountFor(pod, c, flags[f])
					if vol == nil || vol.Secret == nil || vol.Secret.SecretName != m.cert.Spec.SecretName {
						t.Errorf("--%s=%s is not in the Certificate's Secret %q", f, flags[f], m.cert.Spec.SecretName)
					}
				}
				if path.Base(flags["tls-cert"]) != corev1.TLSCertKey || path.Base(flags["tls-key"]) != corev1.TLSPrivateKeyKey {
					t.Errorf("--tls-cert %s --tls-key %s, want cert-manager's %s and %s", flags["tls-cert"], flags["tls-key"], corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
				}
				svcDNS := m.service.Name + "." + m.service.Namespace + ".svc"
				if !slices.Contains(m.cert.Spec.DNSNames, svcDNS) {
					t.Errorf("Certificate dnsNames %q lack the Service name %s", m.cert.Spec.DNSNames, svcDNS)
				}
				ref := m.cert.Spec.IssuerRef
				if ref.Name != m.issuer.Metadata.Name || ref.Kind != "Issuer" || ref.Group != "cert-manager.io" {
					t.Errorf("Certificate issuerRef %+v, want the Issuer %s", ref, m.issuer.Metadata.Name)
				}
				if m.issuer.Spec.CA == nil || m.issuer.Spec.CA.SecretName == "" {
					t.Error("Issuer is not a CA issuer with a secretName")
				}
				if !slices.Contains(m.cert.Spec.Usages, "server auth") {
					t.Errorf("Certificate usages %q lack server auth", m.cert.Spec.Usages)
				}
				// Renewal must happen before the server starts warning
				// (30 days), so a warning means renewal is failing.
				dur, renew := m.cert.Spec.Duration, m.cert.Spec.RenewBefore
				if dur == nil || renew == nil || renew.Duration <= 30*24*time.Hour || renew.Duration >= dur.Duration {
					t.Errorf("Certificate duration %v renewBefore %v, want 30 days < renewBefore < duration", dur, renew)
				}
			})

			t.Run("keyring", func(t *testing.T) {
				keysVol, _ := mountFor(pod, c, flags["keys-file"])
				automount := pod.AutomountServiceAccountToken != nil && *pod.AutomountServiceAccountToken
				if !v.vault {
					if flags["keys-file"] == "" || keysVol == nil || keysVol.Secret == nil || keysVol.Secret.SecretName != "codec-server-keys" {
						t.Fatalf("--keys-file=%q is not in the Secret codec-server-keys", flags["keys-file"])
					}
					// The server warns about key files readable by others.
					if mode := keysVol.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 {
						t.Errorf("key Secret defaultMode %v, want no access for others", mode)
					}
					if env["VAULT_ADDR"] != "" {
						t.Error("both a key file and Vault configured")
					}
					if automount {
						t.Error("the key-file keyring mounts a ServiceAccount token it does not need")
					}
					return
				}
				if flags["keys-file"] != "" {
					t.Errorf("Vault variant still passes --keys-file=%s", flags["keys-file"])
				}
				for _, vol := range pod.Volumes {
					if vol.Secret != nil && vol.Secret.SecretName == "codec-server-keys" {
						t.Error("Vault variant still mounts the key Secret")
					}
				}
				for _, k := range []string{"VAULT_ADDR", "CODEC_SERVER_VAULT_K8S_ROLE", "CODEC_SERVER_VAULT_KEY"} {
					if env[k] == "" {
						t.Errorf("Vault variant lacks %s", k)
					}
				}
				if !strings.HasPrefix(env["VAULT_ADDR"], "https://") {
					t.Errorf("VAULT_ADDR %q, want https", env["VAULT_ADDR"])
				}
				if env["VAULT_TOKEN"] != "" {
					t.Error("Vault variant carries a static VAULT_TOKEN; it logs in with Kubernetes auth")
				}
				saAutomount := m.account.AutomountServiceAccountToken == nil || *m.account.AutomountServiceAccountToken
				if !automount || !saAutomount {
					t.Errorf("Kubernetes auth needs the ServiceAccount token: pod automount %v, ServiceAccount %v", automount, saAutomount)
				}
			})
		})
	}
}

// TestShutdownFitsTheGracePeriod: the server drains on SIGTERM by itself
// (--shutdown-delay, /readyz 503 while it keeps serving) and then lets
// requests finish (--shutdown-timeout); both are set, the delay is not
// zero, and the pod's grace period is longer than their sum, so the
// kubelet's SIGKILL never cuts a request off.
func TestShutdownFitsTheGracePeriod(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			m := build(t, v.edit)
			c := container(t, m)
			env, flags := environment(t, m, c), flagValues(t, c.Args)
			setting := func(flag string) time.Duration {
				s, ok := flags[flag]
				if !ok {
					s, ok = env[serverflags.Env(flag)]
				}
				d, err := time.ParseDuration(s)
				if !ok || err != nil {
					t.Fatalf("--%s (%s): %q %v; set it explicitly", flag, serverflags.Env(flag), s, err)
				}
				return d
			}
			delay, timeout := setting("shutdown-delay"), setting("shutdown-timeout")
			if delay <= 0 {
				t.Errorf("--shutdown-delay %s: a terminating pod would refuse the requests the Service still sends it", delay)
			}
			grace := m.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds
			if grace == nil || time.Duration(*grace)*time.Second <= delay+timeout {
				t.Errorf("terminationGracePeriodSeconds %v, want more than --shutdown-delay %s + --shutdown-timeout %s", grace, delay, timeout)
			}
		})
	}
}
