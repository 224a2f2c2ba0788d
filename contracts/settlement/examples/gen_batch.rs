//! Deterministic batch generator for e2e runs and gas measurements on a real chain.
//!
//! ```text
//! cargo run -p garden-settlement --example gen_batch -- pubkey <seed>
//! cargo run -p garden-settlement --example gen_batch -- batch <chain_id> <settlement> \
//!     <consumer> <provider> <count> <seed> <first_seq> <signed_at> [price_ref] [unit] [max_unit_price]
//! ```
//! `pubkey` prints the base64 attestation key of the Ed25519 key whose secret is `seed`
//! repeated 32 times (for the consortium's `members`). `batch` prints the JSON execute
//! message `{"settle_batch":{"batch":"<GWAB base64>"}}` with `count` attestations signed by
//! that key, nonces following the garden-wire nonce rule (sequence `first_seq`, `first_seq +
//! 1`, ... of `signed_at`'s hour), quantity 1 each.

use cosmwasm_std::Binary;
use ed25519_dalek::{Signer, SigningKey};
use garden_wire::attestation::{Attestation, Domain};
use garden_wire::{batch, nonce};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .unwrap_or_else(|| panic!("missing argument {i}; see the file's docs"))
            .as_str()
    };
    let key = |s: &str| SigningKey::from_bytes(&[s.parse::<u8>().expect("seed is 0..=255"); 32]);
    match arg(0) {
        "pubkey" => println!(
            "{}",
            Binary::from(key(arg(1)).verifying_key().to_bytes().to_vec()).to_base64()
        ),
        "batch" => {
            let (chain_id, contract, consumer, provider) = (arg(1), arg(2), arg(3), arg(4));
            let count: u64 = arg(5).parse().expect("count");
            let sk = key(arg(6));
            let first: u64 = arg(7).parse().expect("first_seq");
            let signed_at: u64 = arg(8).parse().expect("signed_at");
            let price_ref = args.get(9).map_or("storage", String::as_str);
            let unit = args.get(10).map_or("gib-hour", String::as_str);
            let max_unit_price: u128 = args
                .get(11)
                .map_or(1_000, |s| s.parse().expect("max_unit_price"));
            let domain = Domain { chain_id, contract };
            let hour = nonce::first_nonce(nonce::epoch(signed_at));
            let items: Vec<Attestation> = (first..first + count)
                .map(|seq| {
                    let mut a = Attestation {
                        provider: provider.into(),
                        consumer: consumer.into(),
                        resource_id: "dataset/1".into(),
                        quantity: 1,
                        unit: unit.into(),
                        price_ref: price_ref.into(),
                        max_unit_price,
                        period_start: signed_at.saturating_sub(3600),
                        period_end: signed_at,
                        nonce: hour + seq,
                        signed_at,
                        signer: sk.verifying_key().to_bytes(),
                        signature: [0; 64],
                    };
                    a.signature = sk.sign(&a.signing_bytes(&domain)).to_bytes();
                    a
                })
                .collect();
            let bytes = batch::encode(&items).expect("encodable batch");
            println!(
                "{{\"settle_batch\":{{\"batch\":\"{}\"}}}}",
                Binary::from(bytes).to_base64()
            );
        }
        other => panic!("unknown command {other}"),
    }
}
