//! Checks the published test vectors in `docs/vectors/attestation-v1.json`.
//! Keys come from fixed seeds, Ed25519 signatures are deterministic, so every byte is fixed.
//! Regenerate (only after a deliberate format change, with a version bump):
//! `GARDEN_REGEN_VECTORS=1 cargo test -p garden-wire --test vectors`.

use ed25519_dalek::{Signer, SigningKey, Verifier};
use garden_wire::attestation::{Attestation, Domain};
use garden_wire::endorsement::EndorsementBody;
use garden_wire::{batch, Batch};
use serde_json::{json, Value};

/// The published vectors, from this checkout. `CARGO_MANIFEST_DIR` is read at run time:
/// cargo reuses a test binary built from another checkout sharing the target directory, and
/// the compile-time value would point there (or nowhere).
fn vectors_path() -> std::path::PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    std::path::Path::new(&dir).join("../../docs/vectors/attestation-v1.json")
}
const CHAIN_ID: &str = "garden-zone";
const SETTLEMENT: &str = "wasm14hj2tavq8fpesdwxxcu44rty3hh90vhujrvcmstl4zr3txmfvw9s0phg4d";
const CONSORTIUM: &str = "wasm1nc5tatafv6eyq7llkr2gv50ff9e22mnf70qgjlv737ktmt4eswrqr5j2ht";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn attestations() -> Vec<Attestation> {
    let consumer = key(1);
    let other = key(2);
    let mk = |k: &SigningKey, nonce: u64, consumer: &str, quantity: u64| {
        let mut a = Attestation {
            provider: "wasm1provider0000000000000000000000000000000".into(),
            consumer: consumer.into(),
            resource_id: "dataset/42".into(),
            quantity,
            unit: "gib-hour".into(),
            price_ref: "storage".into(),
            max_unit_price: 1_500,
            period_start: 1_767_225_600, // 2026-01-01T00:00:00Z
            period_end: 1_767_229_200,
            nonce,
            signed_at: 1_767_229_260,
            signer: k.verifying_key().to_bytes(),
            signature: [0; 64],
        };
        let msg = a.signing_bytes(&Domain {
            chain_id: CHAIN_ID,
            contract: SETTLEMENT,
        });
        a.signature = k.sign(&msg).to_bytes();
        a
    };
    vec![
        mk(
            &consumer,
            0,
            "wasm1consumer1000000000000000000000000000000",
            10,
        ),
        mk(
            &consumer,
            1,
            "wasm1consumer1000000000000000000000000000000",
            250,
        ),
        mk(&other, 7, "wasm1consumer2000000000000000000000000000000", 1),
    ]
}

fn generate() -> Value {
    let domain = Domain {
        chain_id: CHAIN_ID,
        contract: SETTLEMENT,
    };
    let atts = attestations();
    let items: Vec<Value> = atts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({
                "seed": format!("{:02x} repeated 32 times", if i < 2 { 1 } else { 2 }),
                "provider": a.provider, "consumer": a.consumer, "resource_id": a.resource_id,
                "quantity": a.quantity, "unit": a.unit, "price_ref": a.price_ref,
                "max_unit_price": a.max_unit_price.to_string(),
                "period_start": a.period_start, "period_end": a.period_end,
                "nonce": a.nonce, "signed_at": a.signed_at,
                "signer_pubkey_hex": hex::encode(a.signer),
                "signing_bytes_hex": hex::encode(a.signing_bytes(&domain)),
                "signature_hex": hex::encode(a.signature),
            })
        })
        .collect();
    let endorser = key(3);
    let subject = key(4);
    let scopes = vec!["settle".to_string(), "discovery".to_string()];
    let body = EndorsementBody {
        subject: "wasm1peer00000000000000000000000000000000000",
        subject_pubkey: &subject.verifying_key().to_bytes(),
        scopes: &scopes,
        valid_from: 1_767_225_600,
        valid_until: 1_798_761_600,
    };
    let eb = body.signing_bytes(&Domain {
        chain_id: CHAIN_ID,
        contract: CONSORTIUM,
    });
    json!({
        "format": "garden attestation v1 / GWAB batch v1 / endorsement v1",
        "chain_id": CHAIN_ID,
        "settlement_contract": SETTLEMENT,
        "consortium_contract": CONSORTIUM,
        "attestations": items,
        "batch_hex": hex::encode(batch::encode(&atts).unwrap()),
        "endorsement": {
            "endorser_seed": "03 repeated 32 times",
            "endorser_pubkey_hex": hex::encode(endorser.verifying_key().to_bytes()),
            "subject": body.subject,
            "subject_seed": "04 repeated 32 times",
            "subject_pubkey_hex": hex::encode(body.subject_pubkey),
            "scopes": scopes, "valid_from": body.valid_from, "valid_until": body.valid_until,
            "signing_bytes_hex": hex::encode(&eb),
            "signature_hex": hex::encode(endorser.sign(&eb).to_bytes()),
        }
    })
}

#[test]
fn published_vectors_match() {
    let generated = generate();
    if std::env::var_os("GARDEN_REGEN_VECTORS").is_some() {
        std::fs::write(
            vectors_path(),
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
    }
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_path()).expect("vectors file"))
            .unwrap();
    assert_eq!(
        published, generated,
        "docs/vectors/attestation-v1.json is out of date"
    );
}

#[test]
fn published_vectors_verify_independently() {
    // Re-derive from the JSON alone, as another implementation would.
    let v: Value = serde_json::from_str(&std::fs::read_to_string(vectors_path()).unwrap()).unwrap();
    let domain = Domain {
        chain_id: CHAIN_ID,
        contract: SETTLEMENT,
    };
    let batch_bytes = hex::decode(v["batch_hex"].as_str().unwrap()).unwrap();
    let batch = Batch::decode(&batch_bytes, 1000).unwrap();
    let items = v["attestations"].as_array().unwrap();
    assert_eq!(batch.len(), items.len());
    for (i, item) in items.iter().enumerate() {
        let a = batch.get(i);
        let msg = a.signing_bytes(&domain);
        assert_eq!(
            hex::encode(&msg),
            item["signing_bytes_hex"].as_str().unwrap()
        );
        assert_eq!(a.nonce, item["nonce"].as_u64().unwrap());
        let vk = ed25519_dalek::VerifyingKey::from_bytes(a.signer).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(a.signature);
        vk.verify(&msg, &sig).unwrap();
        // a different chain id must not verify
        let other = a.signing_bytes(&Domain {
            chain_id: "other-zone",
            contract: SETTLEMENT,
        });
        assert!(vk.verify(&other, &sig).is_err());
    }
    let e = &v["endorsement"];
    let vk_bytes: [u8; 32] = hex::decode(e["endorser_pubkey_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sig: [u8; 64] = hex::decode(e["signature_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let msg = hex::decode(e["signing_bytes_hex"].as_str().unwrap()).unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&vk_bytes)
        .unwrap()
        .verify(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();
}
