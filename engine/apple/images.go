package apple

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/VerilyPete/claudecontainer/engine"
)

// imageJSON holds the keys read of an image object, an ImageResource
// (1.2.2:Sources/ContainerResource/Image/ImageResource.swift):
//
//	{id, configuration{name, descriptor, creationDate}, variants[…]}
//
// configuration.name is the normalised reference.
type imageJSON struct {
	Configuration *struct {
		Name *string `json:"name"`
	} `json:"configuration"`
}

// ParseImages reads the output of `container image list --format json` of
// release v and returns the image references it lists, as printed.
func ParseImages(data []byte, v Version) ([]string, error) {
	var items []imageJSON
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("reading `container image list` output: %w (output: %q)", err, engine.Clip(data))
	}
	refs := make([]string, 0, len(items))
	for _, it := range items {
		if it.Configuration == nil || it.Configuration.Name == nil {
			return nil, missingKey(v, "image list", "configuration.name")
		}
		refs = append(refs, *it.Configuration.Name)
	}
	return refs, nil
}

var (
	refComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	refDomain    = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?$`)
	refTag       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	refDigest    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// NormalizeReference writes an image reference the way the container
// runtime lists it: `claudepine` and `claudepine:latest` become
// `docker.io/library/claudepine:latest`, `me/tool` becomes
// `docker.io/me/tool:latest`, and a registry host is kept as given.
func NormalizeReference(ref string) (string, error) {
	if ref == "" {
		return "", errors.New("empty image reference")
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest && !refDigest.MatchString(digest) {
		return "", fmt.Errorf("image reference %q: bad digest %q", ref, digest)
	}
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
		if !refTag.MatchString(tag) {
			return "", fmt.Errorf("image reference %q: bad tag %q", ref, tag)
		}
	}
	parts := strings.Split(name, "/")
	domain := "docker.io"
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		domain, parts = parts[0], parts[1:]
		if !refDomain.MatchString(domain) {
			return "", fmt.Errorf("image reference %q: bad registry %q", ref, domain)
		}
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && len(parts) == 1 {
		parts = append([]string{"library"}, parts...)
	}
	for _, p := range parts {
		if !refComponent.MatchString(p) {
			return "", fmt.Errorf("image reference %q: bad name component %q (lower-case letters, digits and separators only)", ref, p)
		}
	}
	out := domain + "/" + strings.Join(parts, "/")
	if tag == "" && !hasDigest {
		tag = "latest"
	}
	if tag != "" {
		out += ":" + tag
	}
	if hasDigest {
		out += "@" + digest
	}
	return out, nil
}
