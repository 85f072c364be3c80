package main

import (
	"bytes"
	"encoding/pem"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// caBundle is the PEM file of root certificates the image carries at
// /etc/ssl/certs/ca-certificates.crt, where Go's crypto/x509 looks on
// Linux. It comes from golang.org/x/crypto/x509roots/fallback (Mozilla's
// roots, curated by the Go team) at the version go.sum pins, so the image
// is reproducible and the helper binary pays nothing for it. Roots that
// carry a distrust-after constraint, which a PEM file cannot express, are
// left out.
func caBundle() []byte {
	var b bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	return b.Bytes()
}
