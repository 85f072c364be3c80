package cmd

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every command's --help has the same shape: a Usage line (or lines)
// naming each flag with its argument in capitals, then the flags with those
// same names, never pflag's type names ("string", "strings").
func TestEveryCommandHelpSameStyle(t *testing.T) {
	isolateEnv(t)
	flagLine := regexp.MustCompile(`^\s+(?:-\w, )?--([a-z-]+)(?: ([^ ]+))?\s{2,}`)
	for name, command := range map[string]func([]string, IO) error{
		"configure-docker":            ConfigureDocker,
		"token":                       Token,
		"dockerconfig":                DockerConfig,
		"doctor":                      Doctor,
		"drone-registry":              DroneRegistry,
		"kubelet-credential-provider": KubeletCredentialProvider,
	} {
		t.Run(name, func(t *testing.T) {
			out, stderr, err := runInProcess(t, command, "--help")
			if err != nil || stderr != "" {
				t.Fatalf("--help: %v, stderr %q", err, stderr)
			}
			usage, _, _ := strings.Cut(out, "\n\n")
			if !strings.HasPrefix(usage, "Usage: docker-credential-gcp "+name+" ") || strings.Contains(usage, "[flags]") {
				t.Errorf("usage line %q does not name the command's flags", usage)
			}
			_, flags, ok := strings.Cut(out, "\nFlags:\n")
			if !ok {
				t.Fatalf("no Flags: section:\n%s", out)
			}
			for _, line := range strings.Split(strings.TrimRight(flags, "\n"), "\n") {
				m := flagLine.FindStringSubmatch(line)
				if m == nil {
					continue // a wrapped description
				}
				flag, arg := m[1], m[2]
				if arg == "string" || arg == "strings" || arg == "int" || arg == "duration" {
					t.Errorf("--%s shows pflag's type name %q; name its argument (`FILE`, `HOSTS`, ...)", flag, arg)
				}
				if flag == "help" {
					continue
				}
				if !strings.Contains(usage, "[--"+flag) {
					t.Errorf("--%s is not in the usage line %q", flag, usage)
				}
			}
		})
	}
}

// kubelet-credential-provider --help names the same matchImages patterns
// as the README's CredentialProviderConfig.
func TestKubeletHelpListsREADMEPatterns(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(readme), "matchImages:\n")
	patterns := regexp.MustCompile(`(?m)^\s+- "([^"]+)"`).FindAllStringSubmatch(block[:strings.Index(block, "defaultCacheDuration")], -1)
	if len(patterns) < 4 {
		t.Fatalf("found %d matchImages patterns in the README: %v", len(patterns), patterns)
	}
	out, _, err := runInProcess(t, KubeletCredentialProvider, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patterns {
		if !strings.Contains(out, `"`+p[1]+`"`) {
			t.Errorf("--help lacks the README's matchImages pattern %q:\n%s", p[1], out)
		}
	}
}
