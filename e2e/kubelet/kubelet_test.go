// Package kubelet runs the built docker-credential-gcp under the real
// kubelet code of k8s.io/kubernetes: its credential-provider plugin package
// (RegisterCredentialProviderPlugins from a CredentialProviderConfig file,
// the per-pod keyring) and its service-account token manager, over a fake
// Kubernetes API server and fakes of Google's endpoints on 127.0.0.1.
//
// Each "kubelet" is a child process (this test binary re-run with
// kubeletJobEnv set): the plugin package registers providers once per
// process, as the kubelet does at start-up, and logs through klog, whose
// output the parent reads.
package kubelet

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/credentialprovider/plugin"
	kubelettoken "k8s.io/kubernetes/pkg/kubelet/token"
	"k8s.io/kubernetes/pkg/util/parsers"
)

// kubeletJobEnv names the job file a child process runs as a kubelet.
const kubeletJobEnv = "DCG_KUBELET_E2E_JOB"

// binary is docker-credential-gcp built once for the package.
var binary string

func TestMain(m *testing.M) {
	if job := os.Getenv(kubeletJobEnv); job != "" {
		os.Exit(runKubelet(job))
	}
	dir, err := os.MkdirTemp("", "dcg-kubelet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "docker-credential-gcp")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=e2e -X main.commit=test", "-o", binary, ".")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building docker-credential-gcp: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// kubeletJob is what one child kubelet does: start with a
// CredentialProviderConfig, then look images up for pods, in order.
type kubeletJob struct {
	Config    string
	BinDir    string
	APIServer string
	Pulls     []pull
}

// pull is one image pull of a pod; ServiceAccount "" is a pod without one
// (a static pod).
type pull struct {
	Namespace, Pod, PodUID, ServiceAccount string
	Image                                  string
}

// pulled is what the kubelet's keyring found for a pull.
type pulled struct {
	Found bool
	Auth  []struct{ Username, Password string }
}

// kubeletResult is the child's answer on stdout.
type kubeletResult struct {
	StartError string // RegisterCredentialProviderPlugins refused the config
	Pulls      []pulled
}

// runKubelet is the child: the kubelet's start-up wiring of credential
// providers (pkg/kubelet/kubelet.go, kuberuntime_manager.go) and its image
// manager's lookup (pkg/kubelet/images/image_manager.go).
func runKubelet(jobFile string) int {
	var job kubeletJob
	data, err := os.ReadFile(jobFile)
	if err == nil {
		err = json.Unmarshal(data, &job)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the kubelet job:", err)
		return 2
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	// V(5) logs each run of the plugin ("Getting image credentials from
	// external exec plugin"), which the tests count.
	_ = fs.Set("v", "5")
	defer klog.Flush()

	client, err := clientset.NewForConfig(&rest.Config{Host: job.APIServer})
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubernetes client:", err)
		return 2
	}
	ctx := context.Background()
	tokenManager := kubelettoken.NewManager(client)
	getServiceAccount := func(namespace, name string) (*corev1.ServiceAccount, error) {
		return client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
	}
	var res kubeletResult
	if err := plugin.RegisterCredentialProviderPlugins(job.Config, job.BinDir, tokenManager.GetServiceAccountToken, getServiceAccount); err != nil {
		res.StartError = err.Error()
	}
	for _, p := range job.Pulls {
		repo, _, _, err := parsers.ParseImageName(p.Image)
		if err != nil {
			fmt.Fprintln(os.Stderr, "parsing image:", err)
			return 2
		}
		keyring := plugin.NewExternalCredentialProviderDockerKeyring(p.Namespace, p.Pod, p.PodUID, p.ServiceAccount)
		creds, found := keyring.Lookup(repo)
		var got pulled
		got.Found = found
		for _, c := range creds {
			got.Auth = append(got.Auth, struct{ Username, Password string }{c.Username, c.Password})
		}
		res.Pulls = append(res.Pulls, got)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

// node is one node's world: a kubelet config, the built binary in its
// plugin directory, an isolated environment, and the fakes it talks to.
type node struct {
	t      *testing.T
	dir    string
	binDir string
	env    []string
}

// newNode makes an isolated node: HOME, XDG dirs, docker and gcloud config
// of its own, no GOOGLE_* variables and a metadata server that refuses.
func newNode(t *testing.T, metadataHost string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, dir: dir, binDir: filepath.Join(dir, "plugins")}
	if err := os.MkdirAll(n.binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(n.binDir, "docker-credential-gcp")); err != nil {
		t.Fatal(err)
	}
	n.env = []string{
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg-config"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "xdg-cache"),
		"DOCKER_CONFIG=" + filepath.Join(dir, "docker"),
		"CLOUDSDK_CONFIG=" + filepath.Join(dir, "gcloud"),
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TMPDIR=" + os.TempDir(),
		"GCE_METADATA_HOST=" + metadataHost,
	}
	return n
}

// kubelet starts a kubelet with config (a CredentialProviderConfig in
// YAML), runs pulls, and returns what its keyring found and its log.
func (n *node) kubelet(config, apiServer string, pulls ...pull) (kubeletResult, string) {
	n.t.Helper()
	cfg := filepath.Join(n.dir, "credential-provider.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		n.t.Fatal(err)
	}
	data, err := json.Marshal(kubeletJob{Config: cfg, BinDir: n.binDir, APIServer: apiServer, Pulls: pulls})
	if err != nil {
		n.t.Fatal(err)
	}
	job := filepath.Join(n.dir, "job.json")
	if err := os.WriteFile(job, data, 0o600); err != nil {
		n.t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(n.env, kubeletJobEnv+"="+job)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		n.t.Fatalf("kubelet: %v\n%s", err, stderr.String())
	}
	var res kubeletResult
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		n.t.Fatalf("kubelet's answer %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	if len(res.Pulls) != len(pulls) {
		n.t.Fatalf("kubelet answered %d pulls of %d", len(res.Pulls), len(pulls))
	}
	return res, stderr.String()
}

// execs counts the kubelet's runs of the plugin in its log.
func execs(log string) int {
	return strings.Count(log, "Getting image credentials from external exec plugin")
}

// podUID is a pod's UID, unique per name in a test.
func podUID(name string) string { return "uid-" + name }
