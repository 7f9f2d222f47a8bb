//! RSA keys for signing: loading a private key from PEM (PKCS#1 or PKCS#8, unencrypted), its
//! public key and OCI fingerprint, and the little DER the key containers need.
//!
//! "Who signs" (`auth`) reads the PEM text from a file or a variable and hands it here; the
//! signer (`sign`) only uses the loaded key; the emulator's verifier reads public keys with
//! `rsa_public_key`. Deliberately not here: encrypted keys (see [`PrivateKey::from_pem`]) and
//! any key type but RSA (OCI API keys are RSA).

use std::fmt;

use ring::rsa::KeyPair;
use rustls_pki_types::pem::{PemObject, SectionKind};

use crate::{Error, Result};

/// An RSA private key usable by ring. `Debug` never shows key material.
pub struct PrivateKey {
    /// ring's key pair, which the signer (`sign::signature`) signs with.
    pub(crate) pair: KeyPair,
}

impl PrivateKey {
    /// Loads an unencrypted PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`) PEM.
    ///
    /// `origin` names where the text came from (a file path or a variable name); every error
    /// starts with it. Encrypted keys are refused with the `openssl` line that decrypts them once:
    /// decrypting here would pull in a second crypto stack.
    pub fn from_pem(pem: &str, origin: &str) -> Result<PrivateKey> {
        let fail = |why: String| Error::Credentials(format!("{origin}: {why}"));
        if is_encrypted_pem(pem) {
            // A bare variable name would read oddly as an openssl input file.
            let file = if origin.contains('/') || origin.contains('.') {
                origin
            } else {
                "key.pem"
            };
            return Err(fail(format!(
                "the private key is encrypted and ocivision does not decrypt keys; write a \
                 plain copy once with `openssl pkey -in {file} -out key-plain.pem` (it asks \
                 for the passphrase; keep the copy mode 0600) and use that"
            )));
        }
        let text = pem.trim().replace("\r\n", "\n");
        let (kind, der) = <(SectionKind, Vec<u8>)>::from_pem_slice(text.as_bytes())
            .map_err(|e| fail(format!("not a PEM private key ({e})")))?;
        let (parsed, pkcs1) = match kind {
            SectionKind::RsaPrivateKey => (KeyPair::from_der(&der), Some(der.as_slice())),
            SectionKind::PrivateKey => (KeyPair::from_pkcs8(&der), der::pkcs8_inner(&der)),
            SectionKind::PublicKey => {
                return Err(fail(
                    "this is a public key; the private key is needed".into(),
                ))
            }
            SectionKind::EcPrivateKey => {
                return Err(fail(
                    "EC keys are not supported; OCI API keys are RSA".into(),
                ))
            }
            _ => {
                return Err(fail(
                    "expected BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY".into(),
                ))
            }
        };
        let pair = parsed.map_err(|e| {
            let bits = pkcs1
                .and_then(der::pkcs1_modulus_bits)
                .map(|b| format!("{b}-bit "))
                .unwrap_or_default();
            fail(match e.to_string().as_str() {
                "TooSmall" | "TooLarge" => format!(
                    "{bits}RSA key refused: signing needs a 2048- to 4096-bit key \
                     (Console-generated keys are 2048-bit)"
                ),
                "WrongAlgorithm" => "not an RSA key; OCI API keys are RSA".into(),
                other => format!("RSA key refused by ring ({other})"),
            })
        })?;
        Ok(PrivateKey { pair })
    }

    /// The public key as DER SubjectPublicKeyInfo (what `openssl rsa -pubout -outform DER` gives).
    pub fn public_key_der(&self) -> Vec<u8> {
        der::spki_from_rsa_public(self.pair.public().as_ref())
    }

    /// The OCI key fingerprint: MD5 of the public key DER, lower-case colon-separated hex.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key_der())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// The OCI fingerprint of a DER SubjectPublicKeyInfo: `aa:bb:…` (16 pairs).
pub fn fingerprint(spki_der: &[u8]) -> String {
    let digest = crate::md5::digest(spki_der);
    let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(":")
}

fn is_encrypted_pem(pem: &str) -> bool {
    pem.contains("BEGIN ENCRYPTED PRIVATE KEY")
        || pem.lines().any(|l| {
            let l = l.trim();
            l.starts_with("Proc-Type:") && l.contains("ENCRYPTED")
        })
}

/// The public key in the PKCS#1 RSAPublicKey form ring verifies with, from SubjectPublicKeyInfo
/// (`BEGIN PUBLIC KEY`) or PKCS#1 RSAPublicKey DER.
#[cfg(feature = "local")]
pub(crate) fn rsa_public_key(public_key: &[u8]) -> Result<&[u8]> {
    der::rsa_public_from_any(public_key).ok_or_else(|| {
        Error::Signing("public key is neither SubjectPublicKeyInfo nor RSAPublicKey DER".into())
    })
}

/// Just enough DER for RSA key containers; anything unexpected yields `None`.
mod der {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OCTET_STRING: u8 = 0x04;
    /// AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }.
    const RSA_ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];

    /// Splits one TLV off `input`: (tag, contents, rest).
    pub(super) fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (bytes, tail) = rest.split_at(n);
            rest = tail;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (contents, rest) = rest.split_at(len);
        Some((tag, contents, rest))
    }

    fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
        let (tag, contents, rest) = read(input)?;
        (tag == want).then_some((contents, rest))
    }

    pub(super) fn write(tag: u8, contents: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(contents);
    }

    pub(super) fn spki_from_rsa_public(rsa_public: &[u8]) -> Vec<u8> {
        let mut bits = Vec::with_capacity(rsa_public.len() + 1);
        bits.push(0); // no unused bits
        bits.extend_from_slice(rsa_public);
        let mut body = RSA_ALGORITHM.to_vec();
        write(BIT_STRING, &bits, &mut body);
        let mut out = Vec::with_capacity(body.len() + 4);
        write(SEQUENCE, &body, &mut out);
        out
    }

    /// Accepts SPKI or RSAPublicKey DER and returns the RSAPublicKey (for the emulator).
    #[cfg(any(feature = "local", test))]
    pub(super) fn rsa_public_from_any(der: &[u8]) -> Option<&[u8]> {
        let (outer, rest) = expect(der, SEQUENCE)?;
        if !rest.is_empty() {
            return None;
        }
        match read(outer)? {
            (INTEGER, _, _) => Some(der),
            (SEQUENCE, algorithm, after) => {
                if algorithm != &RSA_ALGORITHM[2..] {
                    return None;
                }
                let (bits, _) = expect(after, BIT_STRING)?;
                let (&unused, key) = bits.split_first()?;
                (unused == 0).then_some(key)
            }
            _ => None,
        }
    }

    /// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo.
    pub(super) fn pkcs8_inner(der: &[u8]) -> Option<&[u8]> {
        let (info, _) = expect(der, SEQUENCE)?;
        let (_version, rest) = expect(info, INTEGER)?;
        let (_algorithm, rest) = expect(rest, SEQUENCE)?;
        Some(expect(rest, OCTET_STRING)?.0)
    }

    /// Bit length of the modulus of a PKCS#1 RSAPrivateKey, for error messages.
    pub(super) fn pkcs1_modulus_bits(der: &[u8]) -> Option<usize> {
        let (key, _) = expect(der, SEQUENCE)?;
        let (_version, rest) = expect(key, INTEGER)?;
        let (modulus, _) = expect(rest, INTEGER)?;
        let modulus = &modulus[modulus.iter().take_while(|&&b| b == 0).count()..];
        let first = *modulus.first()?;
        Some(modulus.len() * 8 - first.leading_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_round_trip_between_spki_and_rsa_public_key() {
        let rsa_public = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03];
        let spki = der::spki_from_rsa_public(&rsa_public);
        assert_eq!(der::rsa_public_from_any(&spki), Some(&rsa_public[..]));
        assert_eq!(der::rsa_public_from_any(&rsa_public), Some(&rsa_public[..]));
        assert_eq!(der::rsa_public_from_any(&[0x30, 0x05, 0x02]), None);
        // Long-form length.
        let big = vec![0x41; 300];
        let mut out = Vec::new();
        der::write(0x04, &big, &mut out);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(der::read(&out).unwrap().1.len(), 300);
    }

    #[test]
    fn from_pem_names_origin_on_garbage() {
        let err = PrivateKey::from_pem("not a key", "/tmp/k.pem").unwrap_err();
        assert!(matches!(err, Error::Credentials(_)));
        assert!(err.to_string().contains("/tmp/k.pem"), "{err}");
    }
}
