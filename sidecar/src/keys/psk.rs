//! The private-network pre-shared key (go-libp2p `swarm.key` format:
//! `/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits), parsed by libp2p-pnet.

use std::path::Path;

use libp2p::pnet::PreSharedKey;

use super::{write_secret_file, Error};

/// Loads the PSK from `path`.
pub fn load_psk(path: &Path) -> Result<PreSharedKey, Error> {
    let bytes = super::read_secret_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        what: "swarm.key PSK",
        reason: e.to_string(),
    })?;
    text.trim()
        .parse::<PreSharedKey>()
        .map_err(|e| Error::Invalid {
            path: path.to_path_buf(),
            what: "swarm.key PSK",
            reason: e.to_string(),
        })
}

/// A new random PSK in `swarm.key` text form.
pub fn generate_psk_text() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", hex::encode(b))
}

/// Writes a new PSK file (refuses to overwrite).
pub fn write_new_psk(path: &Path) -> Result<PreSharedKey, Error> {
    write_secret_file(path, generate_psk_text().as_bytes())?;
    load_psk(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_round_trips_and_garbage_is_rejected() {
        let dir = std::env::temp_dir().join(format!("garden-psk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let psk = write_new_psk(&dir.join("swarm.key")).unwrap();
        assert!(load_psk(&dir.join("swarm.key")).unwrap().fingerprint() == psk.fingerprint());
        super::super::write_secret_file(
            &dir.join("bad.key"),
            b"/key/swarm/psk/1.0.0/\n/base16/\nzz\n",
        )
        .unwrap();
        assert!(matches!(
            load_psk(&dir.join("bad.key")),
            Err(Error::Invalid { .. })
        ));
        // A PSK others can read is a leaked PSK: refused with the fix to apply.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("swarm.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let e = load_psk(&dir.join("swarm.key")).unwrap_err();
        assert!(matches!(e, Error::Exposed { mode: 0o644, .. }), "{e}");
        assert!(e.to_string().contains("chmod 600"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
