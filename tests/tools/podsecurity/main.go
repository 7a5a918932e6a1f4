// podsecurity checks Kubernetes objects against a Pod Security Standards level with the
// library the API server's own PodSecurity admission plugin runs,
// k8s.io/pod-security-admission: its policy package's evaluator (the default checks) at
// -level (restricted) and -version (latest), over the pod spec its admission package's
// DefaultPodSpecExtractor takes from the object (Pod, PodTemplate, ReplicationController,
// ReplicaSet, Deployment, DaemonSet, StatefulSet, Job, CronJob). Objects of other kinds are
// skipped; a v1 List is read item by item.
//
// Usage: podsecurity [-level restricted] [-version latest] [-json] [FILE ...]  (no FILE, or "-": stdin)
//
// Each file is YAML (documents separated by ---) or JSON. For every object that holds a pod
// spec it prints one line, "ok KIND [NAMESPACE/]NAME (FILE)" or "FAIL KIND [NAMESPACE/]NAME (FILE)" followed by
// one indented line per forbidden check, "REASON: DETAIL" in the library's own words; with
// -json, one JSON object per line instead: {"source", "kind", "namespace", "name",
// "allowed", "forbidden": [{"reason", "detail"}]}. Exit status: 0 when every object is
// allowed, 1 when one is not, 2 when an input cannot be read or decoded (decoding is
// strict: an unknown or duplicate field is an error, so a misspelt field cannot pass
// unnoticed). tests/tools/podsecurity.py builds it; tests/unit/test_pod_security.py runs it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/admission"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

type forbidden struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

type report struct {
	Source    string      `json:"source"`
	Kind      string      `json:"kind"`
	Namespace string      `json:"namespace"`
	Name      string      `json:"name"`
	Allowed   bool        `json:"allowed"`
	Forbidden []forbidden `json:"forbidden"`
}

type checker struct {
	level     api.LevelVersion
	evaluator policy.Evaluator
	extractor admission.DefaultPodSpecExtractor
	decoder   runtime.Decoder
	asJSON    bool
	out       *bufio.Writer
	failed    bool
}

func newChecker(level, version string, asJSON bool) (*checker, error) {
	l, err := api.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	v, err := api.ParseVersion(version)
	if err != nil {
		return nil, err
	}
	// The default checks, as the admission plugin registers them (no emulated older release).
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	codecs := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	return &checker{
		level:     api.LevelVersion{Level: l, Version: v},
		evaluator: evaluator,
		decoder:   codecs.UniversalDeserializer(),
		asJSON:    asJSON,
		out:       bufio.NewWriter(os.Stdout),
	}, nil
}

// document checks one YAML or JSON document: an object, or a v1 List of them.
func (c *checker) document(source string, doc []byte) error {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	raw, err := utilyaml.ToJSON(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil // an empty document
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if head.Kind == "List" && head.APIVersion == "v1" {
		for _, item := range head.Items {
			if err := c.document(source, item); err != nil {
				return err
			}
		}
		return nil
	}
	obj, _, err := c.decoder.Decode(raw, nil, nil)
	if runtime.IsNotRegisteredError(err) {
		return nil // a kind that holds no pod spec: ConfigMap, Service, our own kinds, ...
	}
	if err != nil {
		return fmt.Errorf("%s: %s %s: %w", source, head.APIVersion, head.Kind, err)
	}
	podMeta, podSpec, err := c.extractor.ExtractPodSpec(obj)
	if err != nil {
		return nil // registered but holds no pod spec (a Service, a ConfigMap, ...)
	}
	accessor, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	r := report{Source: source, Kind: head.Kind, Namespace: accessor.GetNamespace(), Name: accessor.GetName(), Allowed: true, Forbidden: []forbidden{}}
	for _, result := range c.evaluator.EvaluatePod(c.level, podMeta, podSpec) {
		if !result.Allowed {
			r.Allowed = false
			r.Forbidden = append(r.Forbidden, forbidden{Reason: result.ForbiddenReason, Detail: result.ForbiddenDetail})
		}
	}
	c.failed = c.failed || !r.Allowed
	return c.print(r)
}

func (c *checker) print(r report) error {
	if c.asJSON {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.out, "%s\n", line)
		return err
	}
	verdict := "ok"
	if !r.Allowed {
		verdict = "FAIL"
	}
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + name
	}
	fmt.Fprintf(c.out, "%s %s %s (%s)\n", verdict, r.Kind, name, r.Source)
	for _, f := range r.Forbidden {
		fmt.Fprintf(c.out, "    %s: %s\n", f.Reason, f.Detail)
	}
	return nil
}

func (c *checker) file(name string) error {
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else {
		name = "stdin"
	}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(in))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := c.document(name, doc); err != nil {
			return err
		}
	}
}

func main() {
	level := flag.String("level", string(api.LevelRestricted), "the Pod Security Standards level: privileged, baseline or restricted")
	version := flag.String("version", string(api.VersionLatest), `the level's version: "latest" or "v1.N"`)
	asJSON := flag.Bool("json", false, "one JSON object per line instead of text")
	flag.Parse()
	c, err := newChecker(*level, *version, *asJSON)
	if err != nil {
		fmt.Fprintln(os.Stderr, "podsecurity:", err)
		os.Exit(2)
	}
	files := flag.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, name := range files {
		if err := c.file(name); err != nil {
			c.out.Flush()
			fmt.Fprintln(os.Stderr, "podsecurity:", err)
			os.Exit(2)
		}
	}
	if err := c.out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "podsecurity:", err)
		os.Exit(2)
	}
	if c.failed {
		os.Exit(1)
	}
}
