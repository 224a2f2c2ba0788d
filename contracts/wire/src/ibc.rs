//! The IBC pair: what the attestation gateway (consortium zone) and the settlement contract
//! (settlement chain) agree on, and the JSON a signer reads back from the gateway.
//!
//! * Channel: unordered, version [`CHANNEL_VERSION`], over one configured [`Route`]
//!   (connection id + the counterparty contract's port), one channel at a time. Both
//!   contracts judge every handshake step with [`check_channel`].
//! * Packet (gateway -> settlement): a `GWAB` v1 batch ([`crate::batch`]) of the items the
//!   gateway verified (signature, membership at `signed_at`), nothing else.
//! * Acknowledgement (settlement -> gateway): cosmwasm `StdAck`; on success its `result` is
//!   the JSON [`SettleAck`] (one code per packet item, 0 = settled, else the settlement's
//!   `ItemError` code); an error ack carries a message naming what was refused.
//! * The gateway's answers to signers: [`SubmitResponse`] (response data of `submit_batch`)
//!   and [`ItemStatus`] (query `item {signer, nonce}`).

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{
    Binary, Ibc3ChannelOpenResponse, IbcBasicResponse, IbcChannel, IbcChannelCloseMsg,
    IbcChannelConnectMsg, IbcChannelOpenMsg, IbcChannelOpenResponse, IbcOrder, Response, StdError,
    Storage, Uint128,
};
use cw_storage_plus::Item;

use crate::check_str;

/// The channel version both contracts speak (and answer when Hermes proposes `""`).
pub const CHANNEL_VERSION: &str = "garden-settlement-1";

/// Where a contract's one channel may go: the IBC connection and the counterparty
/// contract's port (`wasm.<address>`). Set at instantiation or by the admin (`set_route`).
#[cw_serde]
pub struct Route {
    pub connection_id: String,
    pub counterparty_port: String,
}

impl Route {
    /// Both fields 1..=128 bytes (IBC identifiers are at most 128 characters).
    pub fn validate(&self) -> Result<(), ChannelError> {
        for (field, v) in [
            ("connection_id", &self.connection_id),
            ("counterparty_port", &self.counterparty_port),
        ] {
            if check_str(v).is_err() {
                return Err(ChannelError::BadRoute { field });
            }
        }
        Ok(())
    }
}

/// The open channel as a contract stores it (set on connect, cleared on close).
#[cw_serde]
pub struct ChannelInfo {
    pub channel_id: String,
    pub connection_id: String,
    pub counterparty_port: String,
    pub counterparty_channel_id: String,
}

impl ChannelInfo {
    pub fn of(channel: &IbcChannel) -> Self {
        ChannelInfo {
            channel_id: channel.endpoint.channel_id.clone(),
            connection_id: channel.connection_id.clone(),
            counterparty_port: channel.counterparty_endpoint.port_id.clone(),
            counterparty_channel_id: channel.counterparty_endpoint.channel_id.clone(),
        }
    }

    /// Does this channel still follow `route` (after the admin changed it)?
    pub fn follows(&self, route: &Route) -> bool {
        self.connection_id == route.connection_id
            && self.counterparty_port == route.counterparty_port
    }
}

/// Query `channel {}` of both contracts.
#[cw_serde]
pub struct ChannelResponse {
    pub route: Option<Route>,
    /// The open channel, if any.
    pub channel: Option<ChannelInfo>,
}

/// Why a channel handshake step was refused (the text Hermes shows after its retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("no route is configured: the admin must set_route before a channel can open")]
    NoRoute,
    #[error("channel must be unordered (ORDER_UNORDERED), not ordered")]
    Ordered,
    #[error("channel version {got:?} refused: this contract speaks {CHANNEL_VERSION:?} (or accepts \"\" and answers it)")]
    Version { got: String },
    #[error("channel on connection {got} refused: the route allows only {want}")]
    Connection { got: String, want: String },
    #[error("counterparty port {got} refused: the route allows only {want}")]
    Port { got: String, want: String },
    #[error("channel {existing} is already open: one channel at a time (change the route with set_route to replace it)")]
    Taken { existing: String },
    #[error("closing the channel is refused (anyone may ask to close it); change the route with set_route instead")]
    CloseRefused,
    #[error("route {field} must be 1..=128 bytes")]
    BadRoute { field: &'static str },
}

/// The handshake rule, at every step (open init/try, connect ack/confirm): unordered, version
/// `""` or [`CHANNEL_VERSION`] (also the counterparty's, when known), the configured
/// connection and counterparty port, and no other channel open.
pub fn check_channel(
    channel: &IbcChannel,
    counterparty_version: Option<&str>,
    route: Option<&Route>,
    current: Option<&ChannelInfo>,
) -> Result<(), ChannelError> {
    let route = route.ok_or(ChannelError::NoRoute)?;
    if channel.order != IbcOrder::Unordered {
        return Err(ChannelError::Ordered);
    }
    for v in [Some(channel.version.as_str()), counterparty_version]
        .into_iter()
        .flatten()
    {
        if !v.is_empty() && v != CHANNEL_VERSION {
            return Err(ChannelError::Version { got: v.to_owned() });
        }
    }
    if channel.connection_id != route.connection_id {
        return Err(ChannelError::Connection {
            got: channel.connection_id.clone(),
            want: route.connection_id.clone(),
        });
    }
    if channel.counterparty_endpoint.port_id != route.counterparty_port {
        return Err(ChannelError::Port {
            got: channel.counterparty_endpoint.port_id.clone(),
            want: route.counterparty_port.clone(),
        });
    }
    match current {
        Some(c) if c.channel_id != channel.endpoint.channel_id => Err(ChannelError::Taken {
            existing: c.channel_id.clone(),
        }),
        _ => Ok(()),
    }
}

/// Open init / try: the rule, then this contract's version as the answer (Hermes proposes
/// `""` on a contract port).
pub fn open_channel(
    msg: &IbcChannelOpenMsg,
    route: Option<&Route>,
    current: Option<&ChannelInfo>,
) -> Result<Ibc3ChannelOpenResponse, ChannelError> {
    check_channel(msg.channel(), msg.counterparty_version(), route, current)?;
    Ok(Ibc3ChannelOpenResponse {
        version: CHANNEL_VERSION.to_owned(),
    })
}

/// Connect ack / confirm: the rule again (the route or the open channel may have changed
/// since the open step), then the channel to store.
pub fn connect_channel(
    msg: &IbcChannelConnectMsg,
    route: Option<&Route>,
    current: Option<&ChannelInfo>,
) -> Result<ChannelInfo, ChannelError> {
    check_channel(msg.channel(), msg.counterparty_version(), route, current)?;
    Ok(ChannelInfo::of(msg.channel()))
}

/// Close: an init is refused (ibc-go lets anyone ask to close a channel, and in-flight
/// packets would then time out); a confirm (the other end closed) is accepted. Answers
/// whether the closed channel is the stored one, to forget.
pub fn close_channel(
    msg: &IbcChannelCloseMsg,
    current: Option<&ChannelInfo>,
) -> Result<bool, ChannelError> {
    match msg {
        IbcChannelCloseMsg::CloseInit { .. } => Err(ChannelError::CloseRefused),
        IbcChannelCloseMsg::CloseConfirm { channel } => {
            Ok(current.is_some_and(|c| c.channel_id == channel.endpoint.channel_id))
        }
    }
}

/// Where both contracts keep their open channel (set on connect, cleared on a close confirm
/// or when the route changes).
pub const CHANNEL: Item<ChannelInfo> = Item::new("channel");

/// The `ibc_channel_open` entry point of both contracts, given their route.
pub fn on_channel_open<E: From<ChannelError> + From<StdError>>(
    storage: &dyn Storage,
    route: Option<&Route>,
    msg: &IbcChannelOpenMsg,
) -> Result<IbcChannelOpenResponse, E> {
    let current = CHANNEL.may_load(storage)?;
    Ok(Some(open_channel(msg, route, current.as_ref())?))
}

/// The `ibc_channel_connect` entry point of both contracts: stores the channel.
pub fn on_channel_connect<E: From<ChannelError> + From<StdError>>(
    storage: &mut dyn Storage,
    route: Option<&Route>,
    msg: &IbcChannelConnectMsg,
) -> Result<IbcBasicResponse, E> {
    let current = CHANNEL.may_load(storage)?;
    let open = connect_channel(msg, route, current.as_ref())?;
    CHANNEL.save(storage, &open)?;
    Ok(IbcBasicResponse::new()
        .add_attribute("action", "channel_connect")
        .add_attribute("channel_id", open.channel_id)
        .add_attribute("counterparty_port", open.counterparty_port))
}

/// The `ibc_channel_close` entry point of both contracts: forgets the stored channel when it
/// is the one closed.
pub fn on_channel_close<E: From<ChannelError> + From<StdError>>(
    storage: &mut dyn Storage,
    msg: &IbcChannelCloseMsg,
) -> Result<IbcBasicResponse, E> {
    let current = CHANNEL.may_load(storage)?;
    if close_channel(msg, current.as_ref())? {
        CHANNEL.remove(storage);
    }
    Ok(IbcBasicResponse::new()
        .add_attribute("action", "channel_close")
        .add_attribute("channel_id", &msg.channel().endpoint.channel_id))
}

/// `set_route` of both contracts, after the admin check: validates `route` and forgets the
/// open channel if it does not follow it (nothing more goes over it, so a new one can open).
/// The caller stores the route.
pub fn on_set_route<E: From<ChannelError> + From<StdError>>(
    storage: &mut dyn Storage,
    route: &Route,
) -> Result<Response, E> {
    route.validate()?;
    let mut res = Response::new()
        .add_attribute("action", "set_route")
        .add_attribute("connection_id", &route.connection_id)
        .add_attribute("counterparty_port", &route.counterparty_port);
    if let Some(open) = CHANNEL.may_load(storage)? {
        if !open.follows(route) {
            CHANNEL.remove(storage);
            res = res.add_attribute("channel_forgotten", open.channel_id);
        }
    }
    Ok(res)
}

/// The settlement contract's answer to one packet: `StdAck::success(json(SettleAck))`.
#[cw_serde]
pub struct SettleAck {
    /// The settlement contract's own batch id for this packet.
    pub batch_id: u64,
    pub settled: u32,
    pub rejected: u32,
    pub paid: Uint128,
    /// One byte per packet item, in packet order: 0 = settled, else the `ItemError` code.
    pub codes: Binary,
}

/// Response data of the gateway's `submit_batch`.
#[cw_serde]
pub struct SubmitResponse {
    /// The gateway's id for this submission (see its `batch {batch_id}` query).
    pub batch_id: u64,
    /// Items sent on to the settlement chain (now pending).
    pub forwarded: u32,
    /// Items the gateway refused.
    pub refused: u32,
    /// One byte per input item, in input order: 0 = forwarded (pending), else the
    /// `ItemError` code of the refusal.
    pub codes: Binary,
}

/// Where a (signer key, nonce) stands at the gateway.
#[cw_serde]
pub enum ItemState {
    /// Never forwarded, or its hour was pruned: it may be submitted.
    Free,
    /// Forwarded; the settlement chain has not answered yet.
    Pending,
    /// Settled on the settlement chain: final.
    Settled,
    /// Forwarded and came back unsettled (rejected, error ack or timeout): free again, the
    /// signer may submit it anew (see `code`).
    Released,
}

/// Query `item {signer, nonce}` of the gateway.
#[cw_serde]
pub struct ItemStatus {
    pub state: ItemState,
    /// The gateway batch that holds it (pending) or returned it (released).
    pub batch_id: Option<u64>,
    /// Released after a rejection: the settlement's `ItemError` code (null after an error
    /// ack or a timeout, which return every item of the packet).
    pub code: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::IbcEndpoint;

    fn channel(order: IbcOrder, version: &str, conn: &str, port: &str) -> IbcChannel {
        IbcChannel::new(
            IbcEndpoint {
                port_id: "wasm.me".into(),
                channel_id: "channel-3".into(),
            },
            IbcEndpoint {
                port_id: port.into(),
                channel_id: "channel-9".into(),
            },
            order,
            version,
            conn,
        )
    }

    fn route() -> Route {
        Route {
            connection_id: "connection-0".into(),
            counterparty_port: "wasm.peer".into(),
        }
    }

    #[test]
    fn accepts_the_route_with_empty_or_own_version() {
        let r = route();
        for v in ["", CHANNEL_VERSION] {
            let c = channel(IbcOrder::Unordered, v, "connection-0", "wasm.peer");
            assert_eq!(check_channel(&c, None, Some(&r), None), Ok(()));
            assert_eq!(check_channel(&c, Some(v), Some(&r), None), Ok(()));
        }
        // the same channel again (a later handshake step) is fine
        let c = channel(IbcOrder::Unordered, "", "connection-0", "wasm.peer");
        let open = ChannelInfo::of(&c);
        assert_eq!(check_channel(&c, None, Some(&r), Some(&open)), Ok(()));
        assert!(open.follows(&r));
    }

    #[test]
    fn refuses_everything_else_by_name() {
        let r = route();
        let ok = channel(IbcOrder::Unordered, "", "connection-0", "wasm.peer");
        assert_eq!(
            check_channel(&ok, None, None, None),
            Err(ChannelError::NoRoute)
        );
        let c = channel(IbcOrder::Ordered, "", "connection-0", "wasm.peer");
        assert_eq!(
            check_channel(&c, None, Some(&r), None),
            Err(ChannelError::Ordered)
        );
        let c = channel(IbcOrder::Unordered, "ics20-1", "connection-0", "wasm.peer");
        let e = check_channel(&c, None, Some(&r), None).unwrap_err();
        assert_eq!(
            e,
            ChannelError::Version {
                got: "ics20-1".into()
            }
        );
        assert!(e.to_string().contains("garden-settlement-1"), "{e}");
        let e = check_channel(&ok, Some("garden-settlement-2"), Some(&r), None).unwrap_err();
        assert!(matches!(e, ChannelError::Version { .. }));
        let c = channel(IbcOrder::Unordered, "", "connection-1", "wasm.peer");
        let e = check_channel(&c, None, Some(&r), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "channel on connection connection-1 refused: the route allows only connection-0"
        );
        let c = channel(IbcOrder::Unordered, "", "connection-0", "transfer");
        assert!(matches!(
            check_channel(&c, None, Some(&r), None),
            Err(ChannelError::Port { .. })
        ));
        let mut other = ChannelInfo::of(&ok);
        other.channel_id = "channel-1".into();
        assert_eq!(
            check_channel(&ok, None, Some(&r), Some(&other)),
            Err(ChannelError::Taken {
                existing: "channel-1".into()
            })
        );
    }

    #[test]
    fn handshake_steps() {
        let r = route();
        let c = channel(IbcOrder::Unordered, "", "connection-0", "wasm.peer");
        let answer = open_channel(&IbcChannelOpenMsg::new_init(c.clone()), Some(&r), None);
        assert_eq!(answer.unwrap().version, CHANNEL_VERSION);
        let try_bad = IbcChannelOpenMsg::new_try(c.clone(), "ics20-1");
        assert!(open_channel(&try_bad, Some(&r), None).is_err());
        let mut agreed = c.clone();
        agreed.version = CHANNEL_VERSION.into();
        let ack = IbcChannelConnectMsg::new_ack(agreed.clone(), CHANNEL_VERSION);
        let stored = connect_channel(&ack, Some(&r), None).unwrap();
        assert_eq!(stored.channel_id, "channel-3");
        assert_eq!(stored.counterparty_channel_id, "channel-9");
        assert_eq!(
            close_channel(&IbcChannelCloseMsg::new_init(agreed.clone()), Some(&stored)),
            Err(ChannelError::CloseRefused)
        );
        let confirm = IbcChannelCloseMsg::new_confirm(agreed);
        assert_eq!(close_channel(&confirm, Some(&stored)), Ok(true));
        assert_eq!(close_channel(&confirm, None), Ok(false));
    }

    #[test]
    fn routes_are_bounded() {
        assert_eq!(route().validate(), Ok(()));
        let mut r = route();
        r.counterparty_port = "p".repeat(129);
        assert_eq!(
            r.validate(),
            Err(ChannelError::BadRoute {
                field: "counterparty_port"
            })
        );
        r.connection_id = String::new();
        assert_eq!(
            r.validate(),
            Err(ChannelError::BadRoute {
                field: "connection_id"
            })
        );
    }
}
