package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kubernetesDir is the kustomize tree (a base and one directory per overlay).
const kubernetesDir = "../../manifests/kubernetes"

// podSecret is the Secret the pods read, created out of band (README,
// "Kubernetes"): its name is part of the deployment instructions.
const podSecret = "opsbot"

// manifestSpec is what one render must hold, written from the issue and
// the README, not read from the manifests.
type manifestSpec struct {
	dir       string
	namespace string // "" for the base, which sets none
	objects   int
	// Bounds on the Deployment's replicas (which the HPA's floor equals);
	// maxReplicas 0 means no upper bound.
	minReplicas, maxReplicas int32
	// release: the image must be pinned to a release tag or a digest.
	release bool
}

var manifestSpecs = []manifestSpec{
	// ServiceAccount, ConfigMap, Job, Deployment, Service, HPA, PDB, NetworkPolicy.
	{dir: "base", objects: 8, minReplicas: 2},
	// The same plus the Namespace.
	{dir: "overlays/dev", namespace: "opsbot-dev", objects: 9, minReplicas: 1, maxReplicas: 2},
	{dir: "overlays/prod", namespace: "opsbot", objects: 9, minReplicas: 3, release: true},
}

// The base and every overlay render, decode strictly into the Kubernetes
// API types, and keep the promises of DESIGN section 8 and the shutdown:
// probes, a locked-down pod, a NetworkPolicy, no secret values, and a grace
// period that covers the real shutdown budget.
func TestKubernetesManifests(t *testing.T) {
	overlays, err := os.ReadDir(filepath.Join(kubernetesDir, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range overlays {
		if !slices.ContainsFunc(manifestSpecs, func(s manifestSpec) bool { return s.dir == "overlays/"+o.Name() }) {
			t.Errorf("overlay %s has no entry in manifestSpecs, so nothing checks it", o.Name())
		}
	}
	for _, spec := range manifestSpecs {
		t.Run(spec.dir, func(t *testing.T) {
			objs, err := renderKustomization(filesys.MakeFsOnDisk(), filepath.Join(kubernetesDir, spec.dir))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d objects", len(objs))
			if len(objs) != spec.objects {
				t.Errorf("got %d objects, want %d", len(objs), spec.objects)
			}
			checkManifests(t, spec, collectManifests(t, objs))
		})
	}
}

// Strict decoding catches a misspelled, mis-cased or repeated field here,
// before any cluster sees it (an API server whose field validation only
// warns drops it, and encoding/json accepts the mis-cased one): a typo in
// terminationGracePeriodSeconds would leave the pod the default 30 s.
func TestKubernetesManifestsRefuseUnknownFields(t *testing.T) {
	tests := []struct {
		name, field, want string
	}{
		{"misspelled", "terminationGracePeriod: 40",
			`unknown field "spec.template.spec.terminationGracePeriod"`},
		{"mis-cased", "terminationgraceperiodseconds: 40",
			`unknown field "spec.template.spec.terminationgraceperiodseconds"`},
		{"duplicated", "terminationGracePeriodSeconds: 40\n      terminationGracePeriodSeconds: 60",
			`mapping key "terminationGracePeriodSeconds" already defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := filesys.MakeFsInMemory()
			mustWrite(t, fs, "k/kustomization.yaml", "resources: [deploy.yaml]\n")
			mustWrite(t, fs, "k/deploy.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      `+tt.field+`
      containers: [{name: x, image: x}]
`)
			_, err := renderKustomization(fs, "k")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %s", err, tt.want)
			}
		})
	}
}

func mustWrite(t *testing.T, fs filesys.FileSystem, path, content string) {
	t.Helper()
	if err := fs.WriteFile(path, []byte(content)); err != nil {
		t.Fatal(err)
	}
}

// renderKustomization builds dir as kubectl apply -k would and decodes each
// object into its Kubernetes API type, refusing unknown and duplicate fields
// and kinds outside the API groups opsbot uses.
func renderKustomization(fs filesys.FileSystem, dir string) ([]runtime.Object, error) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		autoscalingv2.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	dec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	var objs []runtime.Object
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		// A strict decoding error comes with the object: it is still an error.
		obj, _, err := dec.Decode(y, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// renderedManifests holds one render's objects by kind; opsbot has at most
// one of each.
type renderedManifests struct {
	namespace  *corev1.Namespace
	account    *corev1.ServiceAccount
	config     *corev1.ConfigMap
	job        *batchv1.Job
	deployment *appsv1.Deployment
	service    *corev1.Service
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	pdb        *policyv1.PodDisruptionBudget
	netpol     *networkingv1.NetworkPolicy
	all        []metav1.Object
}

func collectManifests(t *testing.T, objs []runtime.Object) renderedManifests {
	t.Helper()
	var m renderedManifests
	seen := map[reflect.Type]bool{}
	for _, o := range objs {
		if seen[reflect.TypeOf(o)] {
			t.Errorf("more than one %T", o)
		}
		seen[reflect.TypeOf(o)] = true
		switch o := o.(type) {
		case *corev1.Namespace:
			m.namespace = o
		case *corev1.ServiceAccount:
			m.account = o
		case *corev1.ConfigMap:
			m.config = o
		case *batchv1.Job:
			m.job = o
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
		case *corev1.Secret:
			t.Errorf("Secret %s is rendered: secret values do not belong in git", o.Name)
			continue
		default:
			t.Errorf("unexpected object %T", o)
			continue
		}
		m.all = append(m.all, o.(metav1.Object))
	}
	for kind, missing := range map[string]bool{
		"ServiceAccount": m.account == nil, "ConfigMap": m.config == nil, "Job": m.job == nil,
		"Deployment": m.deployment == nil, "Service": m.service == nil, "HorizontalPodAutoscaler": m.hpa == nil,
		"PodDisruptionBudget": m.pdb == nil, "NetworkPolicy": m.netpol == nil,
	} {
		if missing {
			t.Fatalf("no %s rendered", kind)
		}
	}
	return m
}

func checkManifests(t *testing.T, spec manifestSpec, m renderedManifests) {
	t.Run("namespace", func(t *testing.T) { checkNamespace(t, spec, m) })
	t.Run("deployment", func(t *testing.T) { checkDeployment(t, spec, m) })
	t.Run("grace period", func(t *testing.T) { checkGracePeriod(t, m.deployment, m.config) })
	t.Run("migration job", func(t *testing.T) { checkJob(t, m) })
	t.Run("pods", func(t *testing.T) {
		checkPodSpec(t, "Deployment", m.deployment.Spec.Template.Spec, m)
		checkPodSpec(t, "Job", m.job.Spec.Template.Spec, m)
	})
	t.Run("image", func(t *testing.T) { checkImage(t, spec, m) })
	t.Run("service", func(t *testing.T) { checkService(t, m) })
	t.Run("scaling", func(t *testing.T) { checkScaling(t, spec, m) })
	t.Run("network policy", func(t *testing.T) { checkNetworkPolicy(t, m) })
	t.Run("config", func(t *testing.T) { checkConfig(t, m) })
}

func checkNamespace(t *testing.T, spec manifestSpec, m renderedManifests) {
	if spec.namespace == "" {
		if m.namespace != nil {
			t.Errorf("the base creates Namespace %s; the overlays own namespaces", m.namespace.Name)
		}
	} else {
		if m.namespace == nil || m.namespace.Name != spec.namespace {
			t.Fatalf("got Namespace %v, want %s", m.namespace, spec.namespace)
		}
		// The restricted Pod Security Standard turns a loosened pod into an
		// admission error.
		if got := m.namespace.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("Namespace enforces pod security %q, want restricted", got)
		}
	}
	for _, o := range m.all {
		if _, ok := o.(*corev1.Namespace); !ok && o.GetNamespace() != spec.namespace {
			t.Errorf("%s is in namespace %q, want %q", o.GetName(), o.GetNamespace(), spec.namespace)
		}
	}
}

// serverContainer is the Deployment's opsbot container.
func serverContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	return cs[0]
}

func checkDeployment(t *testing.T, spec manifestSpec, m renderedManifests) {
	d := m.deployment
	c := serverContainer(t, d)
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("server args %q, want [serve]", c.Args)
	}
	if !selects(t, d.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Deployment selector %v does not select its pods %v", d.Spec.Selector, d.Spec.Template.Labels)
	}
	if d.Spec.Replicas == nil {
		t.Errorf("Deployment sets no replicas")
	} else if n := *d.Spec.Replicas; n < spec.minReplicas {
		t.Errorf("Deployment has %d replicas, want at least %d", n, spec.minReplicas)
	} else if spec.maxReplicas > 0 && n > spec.maxReplicas {
		t.Errorf("Deployment has %d replicas, want at most %d", n, spec.maxReplicas)
	}

	port := listenPort(t, m.config)
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startup", c.StartupProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"liveness", c.LivenessProbe, "/healthz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s HTTP probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := resolvePort(t, c, p.probe.HTTPGet.Port); got != port {
			t.Errorf("%s probe goes to port %d; opsbot listens on %d", p.name, got, port)
		}
	}

	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" ||
		ann["prometheus.io/port"] != strconv.Itoa(int(port)) {
		t.Errorf("scrape annotations %v, want scrape true, path /metrics, port %d", ann, port)
	}
}

// The pod is killed terminationGracePeriodSeconds after it starts
// terminating, and the preStop sleep runs inside that time, before
// SIGTERM. A replica killed mid-drain leaves its turns to River's
// stuck-job rescue (an hour) instead of a retry at once.
func checkGracePeriod(t *testing.T, d *appsv1.Deployment, cm *corev1.ConfigMap) {
	c := serverContainer(t, d)
	// Endpoints are removed while the pod keeps serving, so no request
	// lands on a closed listener.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil ||
		c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Fatalf("no preStop sleep: %+v", c.Lifecycle)
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds (the default 30 s is not derived from anything)")
	}
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	// 5 s stay for the pool to close and the process to exit.
	// The budget follows the model deadline the pods run with.
	cfg, err := LoadConfig(func(k string) string { return cm.Data[k] })
	if err != nil {
		t.Fatalf("the ConfigMap's configuration: %v", err)
	}
	budget := shutdownBudget(cfg)
	if need := preStop + budget + 5*time.Second; grace < need {
		t.Errorf("the pod gets %v; preStop %v + shutdown %v + 5s to exit need %v", grace, preStop, budget, need)
	}
}

func checkJob(t *testing.T, m renderedManifests) {
	j := m.job
	cs := j.Spec.Template.Spec.Containers
	if len(cs) != 1 || !slices.Equal(cs[0].Args, []string{"migrate"}) {
		t.Fatalf("migration Job containers %+v, want one running migrate", cs)
	}
	if p := j.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
		t.Errorf("Job restart policy %q", p)
	}
	var db *corev1.EnvVar
	for i, e := range cs[0].Env {
		if e.Name == "DATABASE_URL" {
			db = &cs[0].Env[i]
		}
	}
	if db == nil || db.ValueFrom == nil || db.ValueFrom.SecretKeyRef == nil {
		t.Errorf("Job does not take DATABASE_URL from the Secret: %+v", db)
	}
}

// checkPodSpec holds every pod to the restricted Pod Security Standard and
// to the references the render must resolve.
func checkPodSpec(t *testing.T, what string, p corev1.PodSpec, m renderedManifests) {
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false", what)
	}
	if p.ServiceAccountName != m.account.Name {
		t.Errorf("%s: service account %q, want %q", what, p.ServiceAccountName, m.account.Name)
	}
	sc := p.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod does not set runAsNonRoot", what)
	}
	if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccomp profile is not RuntimeDefault", what)
	}
	if sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Errorf("%s: pod runs as uid 0", what)
	}
	if p.HostNetwork || p.HostPID || p.HostIPC {
		t.Errorf("%s: pod shares a host namespace", what)
	}
	for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
		csc := c.SecurityContext
		if csc == nil {
			csc = &corev1.SecurityContext{}
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation is not false", what, c.Name)
		}
		if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: root filesystem is writable", what, c.Name)
		}
		if csc.Privileged != nil && *csc.Privileged {
			t.Errorf("%s/%s: privileged", what, c.Name)
		}
		if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
			t.Errorf("%s/%s: capabilities %+v, want drop ALL and add none", what, c.Name, csc.Capabilities)
		}
		checkResources(t, what+"/"+c.Name, c.Resources)
		checkEnvRefs(t, what+"/"+c.Name, c, m.config.Name)
	}
}

func checkResources(t *testing.T, what string, r corev1.ResourceRequirements) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		if !hasReq || req.IsZero() {
			t.Errorf("%s: no %s request", what, name)
		}
		if !hasLim || lim.IsZero() {
			t.Errorf("%s: no %s limit", what, name)
		}
		if hasReq && hasLim && lim.Cmp(req) < 0 {
			t.Errorf("%s: %s limit %s below its request %s", what, name, lim.String(), req.String())
		}
	}
}

// secretName matches the variables that hold credentials (README,
// "Configuration"): they come from the Secret, never from a literal.
var secretName = regexp.MustCompile(`(KEY|TOKEN|SECRET|PASSWORD)$|^DATABASE_URL$`)

func checkEnvRefs(t *testing.T, what string, c corev1.Container, configMap string) {
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil && e.ConfigMapRef.Name != configMap:
			t.Errorf("%s: reads ConfigMap %q; the render has %q", what, e.ConfigMapRef.Name, configMap)
		case e.SecretRef != nil && e.SecretRef.Name != podSecret:
			t.Errorf("%s: reads Secret %q, want %q (README)", what, e.SecretRef.Name, podSecret)
		}
	}
	for _, e := range c.Env {
		if secretName.MatchString(e.Name) && e.Value != "" {
			t.Errorf("%s: %s has a literal value", what, e.Name)
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != podSecret {
			t.Errorf("%s: %s reads Secret %q, want %q", what, e.Name, e.ValueFrom.SecretKeyRef.Name, podSecret)
		}
	}
}

// release is a version tag or a digest: something a rollback can name.
var release = regexp.MustCompile(`^ghcr\.io/apacops/opsbot(:v\d+\.\d+\.\d+|@sha256:[0-9a-f]{64})$`)

func checkImage(t *testing.T, spec manifestSpec, m renderedManifests) {
	img := serverContainer(t, m.deployment).Image
	// A migration from another build than the server's would leave the
	// schema behind or ahead of it.
	if job := m.job.Spec.Template.Spec.Containers[0].Image; job != img {
		t.Errorf("Job runs %q, Deployment %q: want the same build", job, img)
	}
	if !strings.HasPrefix(img, "ghcr.io/apacops/opsbot") {
		t.Errorf("image %q is not opsbot's", img)
	}
	if spec.dir == "base" {
		return // the overlays choose the tag
	}
	ref := img[strings.LastIndex(img, "/")+1:]
	if !strings.ContainsAny(ref, ":@") || strings.HasSuffix(ref, ":latest") {
		t.Errorf("image %q: want an explicit tag other than latest, or a digest", img)
	}
	if spec.release && !release.MatchString(img) {
		t.Errorf("image %q is not pinned to a release tag (vX.Y.Z) or digest", img)
	}
}

func checkService(t *testing.T, m renderedManifests) {
	s, d := m.service, m.deployment
	if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select the server pods %v", s.Spec.Selector, d.Spec.Template.Labels)
	}
	// Requests must never reach the migration Job's pods.
	if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(m.job.Spec.Template.Labels)) {
		t.Errorf("Service selector %v also selects the migration Job", s.Spec.Selector)
	}
	want := listenPort(t, m.config)
	for _, p := range s.Spec.Ports {
		if got := resolvePort(t, serverContainer(t, d), p.TargetPort); got != want {
			t.Errorf("Service port %d goes to %d; opsbot listens on %d", p.Port, got, want)
		}
	}
}

func checkScaling(t *testing.T, spec manifestSpec, m renderedManifests) {
	h, d := m.hpa, m.deployment
	ref := h.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("HPA scales %+v, want Deployment %s", ref, d.Name)
	}
	if h.Spec.MinReplicas == nil || d.Spec.Replicas == nil || *h.Spec.MinReplicas != *d.Spec.Replicas {
		t.Errorf("HPA floor %v, Deployment replicas %v: want them equal, so an apply never scales below the floor",
			h.Spec.MinReplicas, d.Spec.Replicas)
	} else if h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
		t.Errorf("HPA bounds %d..%d leave no room to scale", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	if spec.maxReplicas > 0 && h.Spec.MaxReplicas > spec.maxReplicas {
		t.Errorf("HPA scales to %d, want at most %d", h.Spec.MaxReplicas, spec.maxReplicas)
	}
	if len(h.Spec.Metrics) == 0 {
		t.Errorf("HPA has no metric")
	}

	p := m.pdb
	if !selects(t, p.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("PDB selector %v does not select the server pods", p.Spec.Selector)
	}
	// minAvailable equal to the replica count would block every node drain.
	switch {
	case p.Spec.MaxUnavailable != nil:
		if v := p.Spec.MaxUnavailable; v.Type != intstr.Int || v.IntVal < 1 {
			t.Errorf("PDB maxUnavailable %s, want a count of at least 1", v.String())
		}
	case p.Spec.MinAvailable != nil:
		if v := p.Spec.MinAvailable; v.Type != intstr.Int || d.Spec.Replicas == nil || v.IntVal >= *d.Spec.Replicas {
			t.Errorf("PDB minAvailable %s with %v replicas blocks drains", v.String(), d.Spec.Replicas)
		}
	default:
		t.Errorf("PDB sets neither maxUnavailable nor minAvailable")
	}
}

type portProto struct {
	proto corev1.Protocol
	port  int32
}

func checkNetworkPolicy(t *testing.T, m renderedManifests) {
	np := m.netpol
	for what, podLabels := range map[string]map[string]string{
		"server": m.deployment.Spec.Template.Labels, "migration Job": m.job.Spec.Template.Labels,
	} {
		if !selects(t, &np.Spec.PodSelector, podLabels) {
			t.Errorf("NetworkPolicy does not cover the %s pods", what)
		}
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) ||
		!slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy types %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	var in []networkingv1.NetworkPolicyPort
	for _, r := range np.Spec.Ingress {
		if len(r.Ports) == 0 {
			t.Errorf("an ingress rule allows every port")
		}
		in = append(in, r.Ports...)
	}
	var out []networkingv1.NetworkPolicyPort
	for _, r := range np.Spec.Egress {
		if len(r.Ports) == 0 {
			t.Errorf("an egress rule allows every port")
		}
		out = append(out, r.Ports...)
	}
	if got, want := policyPorts(t, in), []portProto{{corev1.ProtocolTCP, listenPort(t, m.config)}}; !slices.Equal(got, want) {
		t.Errorf("ingress ports %v, want %v", got, want)
	}
	// DNS, PostgreSQL, HTTPS (Slack, Teams, the model provider).
	wantOut := []portProto{{corev1.ProtocolTCP, 53}, {corev1.ProtocolTCP, 443}, {corev1.ProtocolTCP, 5432}, {corev1.ProtocolUDP, 53}}
	if got := policyPorts(t, out); !slices.Equal(got, wantOut) {
		t.Errorf("egress ports %v, want %v", got, wantOut)
	}
}

// policyPorts lists rule ports sorted; a named or missing port fails, since
// it would allow more than the one number.
func policyPorts(t *testing.T, ports []networkingv1.NetworkPolicyPort) []portProto {
	var out []portProto
	for _, p := range ports {
		if p.Port == nil || p.Port.Type != intstr.Int || p.EndPort != nil {
			t.Errorf("policy port %+v is not a single number", p)
			continue
		}
		proto := corev1.ProtocolTCP // the API's default
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		out = append(out, portProto{proto, p.Port.IntVal})
	}
	slices.SortFunc(out, func(a, b portProto) int {
		if c := strings.Compare(string(a.proto), string(b.proto)); c != 0 {
			return c
		}
		return int(a.port - b.port)
	})
	return out
}

func checkConfig(t *testing.T, m renderedManifests) {
	for k := range m.config.Data {
		if secretName.MatchString(k) {
			t.Errorf("ConfigMap holds %s: credentials belong in the Secret", k)
		}
	}
}

// listenPort is the port OPSBOT_ADDR makes serve listen on. It must listen
// on every interface: the default 127.0.0.1 is unreachable for the
// kubelet's probes and the Service.
func listenPort(t *testing.T, cm *corev1.ConfigMap) int32 {
	t.Helper()
	host, port, err := net.SplitHostPort(cm.Data["OPSBOT_ADDR"])
	if err != nil {
		t.Fatalf("ConfigMap OPSBOT_ADDR: %v", err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("OPSBOT_ADDR listens on %s only, want every interface", host)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("OPSBOT_ADDR port: %v", err)
	}
	return int32(n)
}

// resolvePort turns a probe's or Service's port (number or name) into the
// container port number it reaches.
func resolvePort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Errorf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("selector %v: %v", sel, err)
		return false
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}
