// Command image packs a statically linked devportal binary into a container image without a
// container engine: one layer on an empty base, written as an OCI image layout (for `crane push`,
// `skopeo copy oci:...`) and as a `docker load` tarball (docker, podman, kind, k3d, minikube).
//
// The same inputs always give the same bytes, so the same commit gives the same image digest:
// every timestamp is -created, every entry is owned by 0:0, entries are written in a fixed order
// and the gzip stream carries no name or time. hack/image.sh supplies the inputs.
//
// It prints the manifest digest (sha256:...) on stdout.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where the binary lives in the image, and the user it runs as (the manifests' runAsUser).
const (
	binaryPath = "usr/local/bin/devportal"
	user       = "65532:65532"
)

// nsswitch becomes /etc/nsswitch.conf: the statically linked C library's resolver reads
// /etc/hosts (the pod's hostAliases), then DNS (/etc/resolv.conf), as every distribution does.
// glibc 2.35 and later (the build's is 2.36) do that without the file too; with it the order does
// not depend on the glibc the binary was linked with (older ones ask DNS first and stop at its
// "not found"). The Containerfile copies the same file.
//
//go:embed nsswitch.conf
var nsswitch []byte

type options struct {
	binary, ref, version, revision, source, licenses, arch, out string
	created                                                     int64
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "statically linked devportal binary to put in the image (required)")
	flag.StringVar(&o.ref, "ref", "", "image reference the docker-load tarball is tagged with, e.g. ghcr.io/kuadrant/devportal:0.1.0 (required)")
	flag.StringVar(&o.version, "version", "", "org.opencontainers.image.version label (required)")
	flag.StringVar(&o.revision, "revision", "", "org.opencontainers.image.revision label: the source commit")
	flag.StringVar(&o.source, "source", "https://github.com/kuadrant/devportal", "org.opencontainers.image.source label")
	flag.StringVar(&o.licenses, "licenses", "", "org.opencontainers.image.licenses label, an SPDX expression (required)")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "image architecture (GOARCH spelling)")
	flag.StringVar(&o.out, "out", "", "directory to write oci/ (image layout) and devportal.tar (docker-load tarball) into (required)")
	flag.Int64Var(&o.created, "created", -1, "every timestamp in the image, in seconds since the epoch: SOURCE_DATE_EPOCH (required)")
	flag.Parse()
	digest, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(digest)
}

func build(o options) (string, error) {
	for flagName, value := range map[string]string{"-binary": o.binary, "-ref": o.ref, "-version": o.version, "-licenses": o.licenses, "-out": o.out} {
		if value == "" {
			return "", fmt.Errorf("%s is required", flagName)
		}
	}
	if o.created < 0 {
		return "", errors.New("-created is required (seconds since the epoch, e.g. $SOURCE_DATE_EPOCH)")
	}
	tag, err := name.NewTag(o.ref, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("-ref %q is not a tagged image reference: %w", o.ref, err)
	}
	binary, err := os.ReadFile(o.binary)
	if err != nil {
		return "", err
	}
	if err := checkStatic(o.binary); err != nil {
		return "", err
	}
	created := time.Unix(o.created, 0).UTC()
	layer, err := rootLayer(binary, created)
	if err != nil {
		return "", err
	}
	img, err := image(layer, o, created)
	if err != nil {
		return "", err
	}
	if err := write(img, tag, o.out); err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return digest.String(), nil
}

// checkStatic refuses a dynamically linked binary: the image has no loader and no libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (it names a program interpreter); the image has no C library: build it with -C target-feature=+crt-static", path)
		}
	}
	return nil
}

// rootLayer is the image's only layer: the binary, the nsswitch.conf its resolver reads, and
// their directories, all owned by root and read-only to everyone else.
func rootLayer(binary []byte, created time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	entry := func(path string, mode int64, content []byte) error {
		h := &tar.Header{Name: path, Mode: mode, ModTime: created, Format: tar.FormatUSTAR}
		if content == nil {
			h.Typeflag, h.Name = tar.TypeDir, path+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	// Parents before children, in this fixed order.
	for _, e := range []struct {
		path    string
		mode    int64
		content []byte
	}{
		{"etc", 0o755, nil},
		{"etc/nsswitch.conf", 0o444, nsswitch},
		{"usr", 0o755, nil},
		{"usr/local", 0o755, nil},
		{"usr/local/bin", 0o755, nil},
		{binaryPath, 0o555, binary},
	} {
		if err := entry(e.path, e.mode, e.content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	compressed := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// image is the OCI image: the layer on an empty base, run as `devportal` by UID 65532.
func image(layer v1.Layer, o options, created time.Time) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/image.sh",
			Comment:   "devportal, statically linked, and /etc/nsswitch.conf",
		},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS, cfg.Created = o.arch, "linux", v1.Time{Time: created}
	labels := map[string]string{
		"org.opencontainers.image.title":       "devportal",
		"org.opencontainers.image.description": "Kubernetes-native developer portal back end: APIProduct and APIKey admission, discovery and API-key Secrets",
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.licenses":    o.licenses,
	}
	if o.revision != "" {
		labels["org.opencontainers.image.revision"] = o.revision
	}
	cfg.Config = v1.Config{
		Entrypoint:   []string{"/" + binaryPath},
		User:         user,
		Env:          []string{"PATH=/usr/local/bin"},
		ExposedPorts: map[string]struct{}{"8443/tcp": {}, "8080/tcp": {}},
		Labels:       labels,
	}
	return mutate.ConfigFile(img, cfg)
}

// write replaces out/oci and out/devportal.tar with the image, through temporary names so a
// failed run leaves the previous image whole.
func write(img v1.Image, tag name.Tag, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	layoutDir, tarPath := filepath.Join(out, "oci"), filepath.Join(out, "devportal.tar")
	tmpLayout, tmpTar := layoutDir+".tmp", tarPath+".tmp"
	if err := os.RemoveAll(tmpLayout); err != nil {
		return err
	}
	p, err := layout.Write(tmpLayout, empty.Index)
	if err != nil {
		return err
	}
	// The tag for tools that read OCI layouts (skopeo's oci:DIR:TAG, `crane push`) and the full
	// reference for containerd's importer.
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
		"io.containerd.image.name":          tag.String(),
	})); err != nil {
		return err
	}
	if err := tarball.WriteToFile(tmpTar, tag, img); err != nil {
		return err
	}
	if err := os.RemoveAll(layoutDir); err != nil {
		return err
	}
	if err := os.Rename(tmpLayout, layoutDir); err != nil {
		return err
	}
	return os.Rename(tmpTar, tarPath)
}
