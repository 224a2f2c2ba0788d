//! `garden-signer keygen <path>`: creates the settlement key file (mode 0600) and prints its
//! public key (hex), the key to register as the member key in the consortium contract.
//! `garden-signer pubkey <path>`: prints the public key of an existing key file.

use std::path::Path;
use std::process::ExitCode;

use garden_signer::SettlementKey;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.as_slice() {
        [cmd, path] if cmd == "keygen" => SettlementKey::keygen(Path::new(path)),
        [cmd, path] if cmd == "pubkey" => SettlementKey::load(Path::new(path)),
        _ => {
            eprintln!("usage: garden-signer keygen <key-file> | garden-signer pubkey <key-file>");
            return ExitCode::from(2);
        }
    };
    match res {
        Ok(k) => {
            println!("{}", hex(&k.public_key()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("garden-signer: {e}");
            ExitCode::FAILURE
        }
    }
}
