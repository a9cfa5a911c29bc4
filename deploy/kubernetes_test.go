package deploy

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/skyfs/skyfs/csi"
)

// The fields of the Kubernetes objects the manifests use, with the API's
// names. Decoding is strict: a field that is not here, a misspelt one
// included, fails the test (add it here when a manifest needs a new one).
type (
	object struct {
		APIVersion  string            `json:"apiVersion"`
		Kind        string            `json:"kind"`
		Metadata    objectMeta        `json:"metadata"`
		Spec        *spec             `json:"spec,omitempty"`
		Type        string            `json:"type,omitempty"`
		StringData  map[string]string `json:"stringData,omitempty"`
		Provisioner string            `json:"provisioner,omitempty"`
		Parameters  map[string]string `json:"parameters,omitempty"`
		// StorageClass fields.
		ReclaimPolicy        string   `json:"reclaimPolicy,omitempty"`
		VolumeBindingMode    string   `json:"volumeBindingMode,omitempty"`
		AllowVolumeExpansion *bool    `json:"allowVolumeExpansion,omitempty"`
		MountOptions         []string `json:"mountOptions,omitempty"`
		// RBAC.
		Rules    []policyRule `json:"rules,omitempty"`
		Subjects []subject    `json:"subjects,omitempty"`
		RoleRef  *roleRef     `json:"roleRef,omitempty"`
	}
	objectMeta struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	}
	spec struct {
		// CSIDriver.
		AttachRequired       *bool    `json:"attachRequired,omitempty"`
		PodInfoOnMount       *bool    `json:"podInfoOnMount,omitempty"`
		FSGroupPolicy        string   `json:"fsGroupPolicy,omitempty"`
		VolumeLifecycleModes []string `json:"volumeLifecycleModes,omitempty"`
		// Deployment, DaemonSet.
		Replicas *int         `json:"replicas,omitempty"`
		Selector *labelSel    `json:"selector,omitempty"`
		Template *podTemplate `json:"template,omitempty"`
		// PersistentVolume, PersistentVolumeClaim.
		Capacity                      map[string]string `json:"capacity,omitempty"`
		AccessModes                   []string          `json:"accessModes,omitempty"`
		PersistentVolumeReclaimPolicy string            `json:"persistentVolumeReclaimPolicy,omitempty"`
		StorageClassName              *string           `json:"storageClassName,omitempty"`
		MountOptions                  []string          `json:"mountOptions,omitempty"`
		CSI                           *csiSource        `json:"csi,omitempty"`
		VolumeName                    string            `json:"volumeName,omitempty"`
		Resources                     *struct {
			Requests map[string]string `json:"requests"`
		} `json:"resources,omitempty"`
	}
	labelSel struct {
		MatchLabels map[string]string `json:"matchLabels"`
	}
	podTemplate struct {
		Metadata objectMeta `json:"metadata"`
		Spec     podSpec    `json:"spec"`
	}
	podSpec struct {
		ServiceAccountName string       `json:"serviceAccountName"`
		PriorityClassName  string       `json:"priorityClassName,omitempty"`
		SecurityContext    *podSecurity `json:"securityContext,omitempty"`
		Containers         []container  `json:"containers"`
		Volumes            []volume     `json:"volumes"`
	}
	podSecurity struct {
		RunAsNonRoot *bool  `json:"runAsNonRoot,omitempty"`
		RunAsUser    *int64 `json:"runAsUser,omitempty"`
		RunAsGroup   *int64 `json:"runAsGroup,omitempty"`
	}
	container struct {
		Name            string        `json:"name"`
		Image           string        `json:"image"`
		Args            []string      `json:"args,omitempty"`
		Env             []envVar      `json:"env,omitempty"`
		VolumeMounts    []volumeMount `json:"volumeMounts,omitempty"`
		SecurityContext *containerSec `json:"securityContext,omitempty"`
	}
	envVar struct {
		Name      string `json:"name"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `json:"fieldPath"`
			} `json:"fieldRef"`
		} `json:"valueFrom,omitempty"`
	}
	volumeMount struct {
		Name             string `json:"name"`
		MountPath        string `json:"mountPath"`
		MountPropagation string `json:"mountPropagation,omitempty"`
	}
	containerSec struct {
		Privileged               *bool `json:"privileged,omitempty"`
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation,omitempty"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem,omitempty"`
		Capabilities             *struct {
			Drop []string `json:"drop"`
		} `json:"capabilities,omitempty"`
	}
	volume struct {
		Name     string `json:"name"`
		HostPath *struct {
			Path string `json:"path"`
			Type string `json:"type"`
		} `json:"hostPath,omitempty"`
		EmptyDir *struct{} `json:"emptyDir,omitempty"`
	}
	csiSource struct {
		Driver               string            `json:"driver"`
		VolumeHandle         string            `json:"volumeHandle"`
		ReadOnly             bool              `json:"readOnly,omitempty"`
		VolumeAttributes     map[string]string `json:"volumeAttributes,omitempty"`
		NodePublishSecretRef *secretRef        `json:"nodePublishSecretRef,omitempty"`
	}
	secretRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	policyRule struct {
		APIGroups []string `json:"apiGroups"`
		Resources []string `json:"resources"`
		Verbs     []string `json:"verbs"`
	}
	subject struct {
		Kind      string `json:"kind"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	roleRef struct {
		Kind     string `json:"kind"`
		Name     string `json:"name"`
		APIGroup string `json:"apiGroup"`
	}
)

// apiVersions are the API group versions of the kinds used.
var apiVersions = map[string]string{
	"Namespace": "v1", "ServiceAccount": "v1", "Secret": "v1", "PersistentVolume": "v1", "PersistentVolumeClaim": "v1",
	"CSIDriver": "storage.k8s.io/v1", "StorageClass": "storage.k8s.io/v1",
	"Deployment": "apps/v1", "DaemonSet": "apps/v1",
	"ClusterRole": "rbac.authorization.k8s.io/v1", "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
	"Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1",
}

// namespaced says whether a kind lives in a namespace.
var namespaced = map[string]bool{
	"ServiceAccount": true, "Secret": true, "PersistentVolumeClaim": true, "Deployment": true, "DaemonSet": true,
	"Role": true, "RoleBinding": true,
}

// sidecars are the Kubernetes project's sidecar images the manifests may
// use, with the flags they are given here. The flags are those the
// sidecars define (cmd/csi-provisioner/csi-provisioner.go and
// cmd/csi-node-driver-registrar/main.go at these releases; -v is klog's).
var sidecars = map[string]struct {
	tag   string
	flags []string
}{
	"registry.k8s.io/sig-storage/csi-provisioner":           {"v5.3.0", []string{"csi-address", "leader-election", "timeout", "v", "extra-create-metadata", "http-endpoint"}},
	"registry.k8s.io/sig-storage/csi-node-driver-registrar": {"v2.13.0", []string{"csi-address", "kubelet-registration-path", "v", "http-endpoint"}},
}

// loadManifests reads every document of deploy/kubernetes/*.yaml.
func loadManifests(t *testing.T) []*object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []*object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if len(bytes.TrimSpace(yamlWithoutComments(doc))) == 0 {
				continue
			}
			var o object
			if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
				t.Errorf("%s, document %d: %v", filepath.Base(f), i+1, err)
				continue
			}
			if want, ok := apiVersions[o.Kind]; !ok || o.APIVersion != want {
				t.Errorf("%s: %s %q: apiVersion %q (known kinds: %v)", filepath.Base(f), o.Kind, o.Metadata.Name, o.APIVersion, apiVersions)
			}
			if o.Metadata.Name == "" {
				t.Errorf("%s: a %s without a name", filepath.Base(f), o.Kind)
			}
			if namespaced[o.Kind] != (o.Metadata.Namespace != "") {
				t.Errorf("%s: %s %s: namespace %q", filepath.Base(f), o.Kind, o.Metadata.Name, o.Metadata.Namespace)
			}
			out = append(out, &o)
		}
	}
	return out
}

func yamlWithoutComments(doc string) []byte {
	var b bytes.Buffer
	for line := range strings.SplitSeq(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

type manifests []*object

func (ms manifests) find(kind, name string) *object {
	for _, o := range ms {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

func (ms manifests) all(kind string) []*object {
	var out []*object
	for _, o := range ms {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// TestManifests checks deploy/kubernetes without a cluster: every object
// parses strictly, names the plugin as the plugin names itself, passes the
// plugin's own checks of parameters, attributes and mount flags, refers
// only to objects the manifests define, and runs images and flags that
// exist.
func TestManifests(t *testing.T) {
	ms := manifests(loadManifests(t))
	buildImageBinaries(t)
	for _, kind := range []string{"Namespace", "CSIDriver", "DaemonSet", "Deployment", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret"} {
		if len(ms.all(kind)) == 0 {
			t.Errorf("no %s", kind)
		}
	}
	for _, o := range ms {
		if ns := o.Metadata.Namespace; ns != "" && ns != "default" && ms.find("Namespace", ns) == nil {
			t.Errorf("%s %s is in namespace %s, which the manifests do not create", o.Kind, o.Metadata.Name, ns)
		}
	}

	// The driver: nothing to attach (no ControllerPublishVolume).
	for _, d := range ms.all("CSIDriver") {
		if d.Metadata.Name != csi.DefaultName {
			t.Errorf("CSIDriver %q, the plugin is %q", d.Metadata.Name, csi.DefaultName)
		}
		if d.Spec == nil || d.Spec.AttachRequired == nil || *d.Spec.AttachRequired {
			t.Error("CSIDriver: attachRequired must be false (the plugin has no ControllerPublishVolume)")
		}
	}
	checkSecretRef := func(what, name, ns string) {
		s := ms.find("Secret", name)
		if s == nil || s.Metadata.Namespace != ns {
			t.Errorf("%s: secret %s/%s is not in the manifests", what, ns, name)
			return
		}
		if s.StringData[csi.SecretKeys[0]] == "" {
			t.Errorf("secret %s has no %q", name, csi.SecretKeys[0])
		}
		for k := range s.StringData {
			if !slices.Contains(csi.SecretKeys, k) {
				t.Errorf("secret %s: key %q is not one the plugin reads (%v)", name, k, csi.SecretKeys)
			}
		}
	}

	// Storage classes: the plugin's parameters and mount flags, secrets
	// that exist.
	for _, sc := range ms.all("StorageClass") {
		if sc.Provisioner != csi.DefaultName {
			t.Errorf("StorageClass %s: provisioner %q", sc.Metadata.Name, sc.Provisioner)
		}
		if err := csi.ValidateParameters(sc.Parameters); err != nil {
			t.Errorf("StorageClass %s: %v", sc.Metadata.Name, err)
		}
		if err := csi.ValidateMountFlags(sc.MountOptions); err != nil {
			t.Errorf("StorageClass %s: %v", sc.Metadata.Name, err)
		}
		if sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion {
			t.Errorf("StorageClass %s allows expansion, which the plugin does not offer", sc.Metadata.Name)
		}
		for _, kind := range []string{"provisioner", "node-publish"} {
			name := sc.Parameters["csi.storage.k8s.io/"+kind+"-secret-name"]
			if name == "" {
				t.Errorf("StorageClass %s: no %s secret", sc.Metadata.Name, kind)
				continue
			}
			checkSecretRef("StorageClass "+sc.Metadata.Name, name, sc.Parameters["csi.storage.k8s.io/"+kind+"-secret-namespace"])
		}
	}

	// Static volumes: attributes the node plugin accepts.
	for _, pv := range ms.all("PersistentVolume") {
		c := pv.Spec.CSI
		if c == nil || c.Driver != csi.DefaultName || c.VolumeHandle == "" {
			t.Errorf("PersistentVolume %s: not a volume of %s with a handle", pv.Metadata.Name, csi.DefaultName)
			continue
		}
		if err := csi.ValidateAttributes(c.VolumeAttributes, nil); err != nil {
			t.Errorf("PersistentVolume %s: %v", pv.Metadata.Name, err)
		}
		if err := csi.ValidateMountFlags(pv.Spec.MountOptions); err != nil {
			t.Errorf("PersistentVolume %s: %v", pv.Metadata.Name, err)
		}
		if c.NodePublishSecretRef == nil {
			t.Errorf("PersistentVolume %s: no node publish secret", pv.Metadata.Name)
		} else {
			checkSecretRef("PersistentVolume "+pv.Metadata.Name, c.NodePublishSecretRef.Name, c.NodePublishSecretRef.Namespace)
		}
		if pv.Spec.PersistentVolumeReclaimPolicy != "Retain" {
			t.Errorf("PersistentVolume %s: a static volume should be retained, not %q", pv.Metadata.Name, pv.Spec.PersistentVolumeReclaimPolicy)
		}
	}
	for _, pvc := range ms.all("PersistentVolumeClaim") {
		sc := pvc.Spec.StorageClassName
		switch {
		case pvc.Spec.VolumeName != "":
			if ms.find("PersistentVolume", pvc.Spec.VolumeName) == nil {
				t.Errorf("claim %s binds volume %s, not in the manifests", pvc.Metadata.Name, pvc.Spec.VolumeName)
			}
		case sc == nil || ms.find("StorageClass", *sc) == nil:
			t.Errorf("claim %s names no storage class of the manifests", pvc.Metadata.Name)
		}
	}

	// The workloads.
	dep := ms.find("Deployment", "skyfs-csi-controller")
	ds := ms.find("DaemonSet", "skyfs-csi-node")
	if dep == nil || ds == nil {
		t.Fatal("no controller Deployment or node DaemonSet")
	}
	for _, w := range []*object{dep, ds} {
		checkWorkload(t, ms, w)
	}
	if m := pluginArg(t, dep, "mode"); m != "controller" {
		t.Errorf("the controller runs --mode=%s", m)
	}
	if m := pluginArg(t, ds, "mode"); m != "node" {
		t.Errorf("the node plugin runs --mode=%s", m)
	}
	checkNode(t, ds)
	checkProvisionerRBAC(t, ms, dep)
}

// plugin returns the plugin's container of a workload.
func plugin(t *testing.T, w *object) *container {
	for i, c := range w.Spec.Template.Spec.Containers {
		if strings.HasPrefix(c.Image, "skyfs/") {
			return &w.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("%s %s runs no skyfs image", w.Kind, w.Metadata.Name)
	return nil
}

// argValue returns --name=value from args.
func argValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

func pluginArg(t *testing.T, w *object, name string) string {
	return argValue(plugin(t, w).Args, name)
}

// checkWorkload checks images, flags, selectors, service accounts and the
// socket the sidecar and the plugin share.
func checkWorkload(t *testing.T, ms manifests, w *object) {
	t.Helper()
	what := w.Kind + " " + w.Metadata.Name
	ps := w.Spec.Template.Spec
	for k, v := range w.Spec.Selector.MatchLabels {
		if w.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("%s: the selector %s=%s does not match the pod labels", what, k, v)
		}
	}
	if ps.ServiceAccountName == "" || ms.find("ServiceAccount", ps.ServiceAccountName) == nil {
		t.Errorf("%s: service account %q is not in the manifests", what, ps.ServiceAccountName)
	}
	vols := map[string]volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
	}
	var sockets []string
	for _, c := range ps.Containers {
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("%s/%s mounts volume %s, which the pod does not have", what, c.Name, m.Name)
			}
			mounts[m.MountPath] = m.Name
		}
		image, tag, _ := strings.Cut(c.Image, ":")
		var sock string
		switch {
		case strings.HasPrefix(image, "skyfs/"):
			target := strings.TrimPrefix(image, "skyfs/")
			if !slices.Contains(imageTargets, target) || tag == "" {
				t.Errorf("%s/%s: image %s is not a target of deploy/docker/Dockerfile (%v) with a tag", what, c.Name, c.Image, imageTargets)
			}
			checkFlags(t, what+"/"+c.Name, "skyfs-csi", c.Args)
			ep := argValue(c.Args, "endpoint")
			if !strings.HasPrefix(ep, "unix:///") {
				t.Errorf("%s/%s: endpoint %q", what, c.Name, ep)
			}
			sock = strings.TrimPrefix(ep, "unix://")
		default:
			sc, ok := sidecars[image]
			if !ok {
				t.Errorf("%s/%s: image %s is neither skyfs's nor a known sidecar", what, c.Name, c.Image)
				continue
			}
			if tag != sc.tag {
				t.Errorf("%s/%s: %s, want the pinned %s", what, c.Name, c.Image, sc.tag)
			}
			for _, a := range c.Args {
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if !strings.HasPrefix(a, "--") || !slices.Contains(sc.flags, name) {
					t.Errorf("%s/%s: flag %q is not one of %s's (%v)", what, c.Name, a, image, sc.flags)
				}
			}
			sock = argValue(c.Args, "csi-address")
		}
		if sock == "" {
			t.Errorf("%s/%s: no socket", what, c.Name)
			continue
		}
		if _, ok := mounts[path.Dir(sock)]; !ok {
			t.Errorf("%s/%s: socket %s is not in a mounted volume", what, c.Name, sock)
		}
		sockets = append(sockets, mounts[path.Dir(sock)]+":"+path.Base(sock))
	}
	if len(sockets) < 2 {
		t.Errorf("%s: %d containers with a socket, want the plugin and a sidecar", what, len(sockets))
	}
	for _, s := range sockets[1:] {
		if s != sockets[0] {
			t.Errorf("%s: the containers use different sockets: %v", what, sockets)
		}
	}
}

// checkNode checks what the node plugin needs of the host: registration
// at the kubelet, the pods' directory with bidirectional propagation,
// privilege, the node's name, and host directories for records and caches.
func checkNode(t *testing.T, ds *object) {
	t.Helper()
	ps := ds.Spec.Template.Spec
	vols := map[string]volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
	}
	hostPathAt := func(c *container, dir string) string {
		for _, m := range c.VolumeMounts {
			if m.MountPath == dir && vols[m.Name].HostPath != nil {
				return vols[m.Name].HostPath.Path
			}
		}
		return ""
	}
	p := plugin(t, ds)
	for _, c := range ps.Containers {
		if reg := argValue(c.Args, "kubelet-registration-path"); reg != "" {
			sock := argValue(c.Args, "csi-address")
			if want := path.Join(hostPathAt(&c, path.Dir(sock)), path.Base(sock)); reg != want {
				t.Errorf("registrar: kubelet-registration-path %s, but the socket is %s on the host", reg, want)
			}
			if hostPathAt(&c, "/registration") != "/var/lib/kubelet/plugins_registry" {
				t.Error("registrar: /registration is not the kubelet's plugins_registry")
			}
			if !strings.HasPrefix(reg, "/var/lib/kubelet/plugins/"+csi.DefaultName+"/") {
				t.Errorf("registrar: the socket %s is not in the kubelet's plugin directory of %s", reg, csi.DefaultName)
			}
		}
	}
	if p.SecurityContext == nil || p.SecurityContext.Privileged == nil || !*p.SecurityContext.Privileged {
		t.Error("the node plugin is not privileged: it cannot mount")
	}
	bidir := false
	for _, m := range p.VolumeMounts {
		if m.MountPath == "/var/lib/kubelet/pods" && m.MountPropagation == "Bidirectional" && hostPathAt(p, m.MountPath) == "/var/lib/kubelet/pods" {
			bidir = true
		}
	}
	if !bidir {
		t.Error("the node plugin does not share /var/lib/kubelet/pods with the host bidirectionally: its mounts would not reach the pods")
	}
	if id := argValue(p.Args, "node-id"); id != "$(NODE_NAME)" {
		t.Errorf("--node-id=%s, want $(NODE_NAME)", id)
	}
	nodeName := false
	for _, e := range p.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		t.Error("NODE_NAME is not the node's name")
	}
	for _, flag := range []string{"state-dir", "cache-root"} {
		dir := argValue(p.Args, flag)
		if dir == "" || hostPathAt(p, dir) == "" {
			t.Errorf("--%s=%s is not a host directory: records or caches would not outlive the container", flag, dir)
		}
	}
	if hostPathAt(p, "/dev/fuse") != "/dev/fuse" {
		t.Error("the node plugin has no /dev/fuse")
	}
}

// checkProvisionerRBAC checks that the controller's service account may do
// what the external provisioner does.
func checkProvisionerRBAC(t *testing.T, ms manifests, dep *object) {
	t.Helper()
	sa := dep.Spec.Template.Spec.ServiceAccountName
	allowed := map[string]bool{}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, b := range ms.all(kind) {
			bound := false
			for _, s := range b.Subjects {
				bound = bound || (s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == dep.Metadata.Namespace)
			}
			role := ms.find(b.RoleRef.Kind, b.RoleRef.Name)
			if role == nil {
				t.Errorf("%s %s refers to %s %s, not in the manifests", kind, b.Metadata.Name, b.RoleRef.Kind, b.RoleRef.Name)
				continue
			}
			if !bound {
				continue
			}
			for _, r := range role.Rules {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						allowed[res+":"+v] = true
					}
				}
			}
		}
	}
	for _, need := range []string{
		"persistentvolumes:create", "persistentvolumes:delete", "persistentvolumes:watch", "persistentvolumeclaims:watch",
		"persistentvolumeclaims:update", "storageclasses:get", "events:create", "secrets:get", "leases:update",
	} {
		if !allowed[need] {
			t.Errorf("the controller's service account %s may not %s", sa, need)
		}
	}
}
