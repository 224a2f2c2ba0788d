//! IBC entry points: the settlement end of the gateway's channel.
//!
//! Handshake: `garden_wire::ibc` rules (unordered, `garden-settlement-1`, the configured
//! route, one channel at a time; a close init is refused). A packet is a `GWAB` batch the
//! gateway verified (signatures under its domain, membership at `signed_at`); it settles with
//! the payment rules only ([`settle_packet`]) and is answered with
//! `StdAck::success(json(SettleAck))`.
//!
//! A packet refused as a whole (other channel, undecodable or oversized batch) gets an error
//! ack written by this contract, naming what was wrong, before anything is written: ibc-go
//! replaces the text of an `Err` with its ABCI code, and the gateway should say why. A failure
//! while writing (an overflow) is an `Err`: the state is reverted and the gateway sees an
//! error ack; either way it releases every item of the packet.

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    to_json_binary, DepsMut, Env, IbcBasicResponse, IbcChannelCloseMsg, IbcChannelConnectMsg,
    IbcChannelOpenMsg, IbcChannelOpenResponse, IbcPacketAckMsg, IbcPacketReceiveMsg,
    IbcPacketTimeoutMsg, IbcReceiveResponse, StdAck,
};
use garden_wire::ibc::{on_channel_close, on_channel_connect, on_channel_open, SettleAck};

use crate::settle::{decode_batch, settle_packet};
use crate::state::{CHANNEL, CONFIG};
use crate::ContractError;

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_channel_open(
    deps: DepsMut,
    _env: Env,
    msg: IbcChannelOpenMsg,
) -> Result<IbcChannelOpenResponse, ContractError> {
    let route = CONFIG.load(deps.storage)?.route;
    on_channel_open(deps.storage, route.as_ref(), &msg)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_channel_connect(
    deps: DepsMut,
    _env: Env,
    msg: IbcChannelConnectMsg,
) -> Result<IbcBasicResponse, ContractError> {
    let route = CONFIG.load(deps.storage)?.route;
    on_channel_connect(deps.storage, route.as_ref(), &msg)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_channel_close(
    deps: DepsMut,
    _env: Env,
    msg: IbcChannelCloseMsg,
) -> Result<IbcBasicResponse, ContractError> {
    on_channel_close(deps.storage, &msg)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_receive(
    deps: DepsMut,
    env: Env,
    msg: IbcPacketReceiveMsg,
) -> Result<IbcReceiveResponse, ContractError> {
    let packet = msg.packet;
    let channel = packet.dest.channel_id.clone();
    let refuse = |why: String| -> Result<IbcReceiveResponse, ContractError> {
        Ok(IbcReceiveResponse::new(StdAck::error(why.clone()))
            .add_attribute("action", "settle_packet")
            .add_attribute("channel", &channel)
            .add_attribute("sequence", packet.sequence.to_string())
            .add_attribute("refused", why))
    };
    match CHANNEL.may_load(deps.storage)? {
        Some(open) if open.channel_id == channel => {}
        Some(open) => {
            return refuse(format!(
                "packet on {channel} refused: the gateway's channel is {}",
                open.channel_id
            ))
        }
        None => return refuse(format!("packet on {channel} refused: no channel is open")),
    }
    let max_batch = CONFIG.load(deps.storage)?.params.max_batch;
    let batch = match decode_batch(packet.data.as_slice(), max_batch) {
        Ok(b) => b,
        Err(e) => return refuse(e.to_string()),
    };
    let done = settle_packet(deps, &env, msg.relayer, &batch)?;
    let ack = StdAck::success(to_json_binary(&SettleAck::from(done.data))?);
    Ok(IbcReceiveResponse::new(ack)
        .add_attribute("action", "settle_packet")
        .add_attribute("channel", channel)
        .add_attribute("sequence", packet.sequence.to_string())
        .add_attributes(done.attributes)
        .add_messages(done.payments))
}

/// The settlement contract sends no packets.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_ack(
    _deps: DepsMut,
    _env: Env,
    _msg: IbcPacketAckMsg,
) -> Result<IbcBasicResponse, ContractError> {
    Ok(IbcBasicResponse::new())
}

/// The settlement contract sends no packets.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_timeout(
    _deps: DepsMut,
    _env: Env,
    _msg: IbcPacketTimeoutMsg,
) -> Result<IbcBasicResponse, ContractError> {
    Ok(IbcBasicResponse::new())
}
