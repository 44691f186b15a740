package gitsource

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Keys are the keys commits must be signed with: OpenPGP (an armored
// keyring) and SSH (public keys, as authorized_keys or allowed_signers
// lines give them).
type Keys struct {
	PGP string
	SSH []ssh.PublicKey
}

// ParseKeys reads a --verify-keys file: armored OpenPGP public key blocks
// and SSH public key lines, in any mix; # starts a comment.
func ParseKeys(data []byte) (*Keys, error) {
	k := &Keys{}
	text := string(data)
	for {
		start := strings.Index(text, "-----BEGIN PGP PUBLIC KEY BLOCK-----")
		if start < 0 {
			break
		}
		end := strings.Index(text[start:], "-----END PGP PUBLIC KEY BLOCK-----")
		if end < 0 {
			return nil, fmt.Errorf("an OpenPGP key block has no end")
		}
		end += start + len("-----END PGP PUBLIC KEY BLOCK-----")
		k.PGP += text[start:end] + "\n"
		text = text[:start] + text[end:]
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			// allowed_signers lines start with the principals: try after them.
			if _, rest, ok := strings.Cut(line, " "); ok {
				pub, _, _, _, err = ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(rest)))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("line %d is neither an SSH public key nor part of an OpenPGP key block", n)
		}
		k.SSH = append(k.SSH, pub)
	}
	if k.PGP == "" && len(k.SSH) == 0 {
		return nil, fmt.Errorf("no keys")
	}
	return k, nil
}

// verify accepts a commit signed by one of the keys.
func (k *Keys) verify(c *object.Commit) error {
	sig := strings.TrimSpace(c.PGPSignature) // go-git keeps any gpgsig header here, SSH ones too
	switch {
	case sig == "":
		return fmt.Errorf("commit %s is not signed, and --verify-keys accepts signed commits only", c.Hash)
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		return k.verifySSH(c, sig)
	case k.PGP == "":
		return fmt.Errorf("commit %s has an OpenPGP signature, and --verify-keys holds SSH keys only", c.Hash)
	}
	if _, err := c.Verify(k.PGP); err != nil {
		return fmt.Errorf("commit %s is not signed by a key of --verify-keys: %v", c.Hash, err)
	}
	return nil
}

func (k *Keys) verifySSH(c *object.Commit, armored string) error {
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return fmt.Errorf("commit %s: its SSH signature does not parse: %v", c.Hash, err)
	}
	payload, err := signedPayload(c)
	if err != nil {
		return err
	}
	for _, pub := range k.SSH {
		if sshsig.Verify(bytes.NewReader(payload), sig, pub, sig.HashAlgorithm, "git") == nil {
			return nil
		}
	}
	return fmt.Errorf("commit %s is not signed by a key of --verify-keys (SSH signature by %s)", c.Hash, ssh.FingerprintSHA256(sig.PublicKey))
}

// signedPayload is the commit as git signs it: encoded without its
// signature header.
func signedPayload(c *object.Commit) ([]byte, error) {
	var o plumbing.MemoryObject
	if err := c.EncodeWithoutSignature(&o); err != nil {
		return nil, err
	}
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
