//! IBC entry points: the gateway end of the channel to the settlement contract.
//!
//! Handshake: `garden_wire::ibc` rules (unordered, `garden-settlement-1`, the configured
//! route, one channel at a time; a close init is refused). The gateway sends packets
//! (`submit_batch`) and takes their answers ([`crate::ack`]); it receives none.

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    DepsMut, Env, IbcBasicResponse, IbcChannelCloseMsg, IbcChannelConnectMsg, IbcChannelOpenMsg,
    IbcChannelOpenResponse, IbcPacketAckMsg, IbcPacketReceiveMsg, IbcPacketTimeoutMsg,
    IbcReceiveResponse, StdAck,
};
use garden_wire::ibc::{on_channel_close, on_channel_connect, on_channel_open};

use crate::ack::{on_answer, Answer};
use crate::state::CONFIG;
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

/// The settlement contract sends nothing; anything received is refused (error ack).
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_receive(
    _deps: DepsMut,
    _env: Env,
    msg: IbcPacketReceiveMsg,
) -> Result<IbcReceiveResponse, ContractError> {
    Ok(
        IbcReceiveResponse::new(StdAck::error("the gateway accepts no packets"))
            .add_attribute("action", "packet_refused")
            .add_attribute("channel", msg.packet.dest.channel_id),
    )
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_ack(
    deps: DepsMut,
    _env: Env,
    msg: IbcPacketAckMsg,
) -> Result<IbcBasicResponse, ContractError> {
    let ack = msg.acknowledgement.data;
    on_answer(deps, &msg.original_packet.data, |items| {
        Answer::of_ack(&ack, items)
    })
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_timeout(
    deps: DepsMut,
    _env: Env,
    msg: IbcPacketTimeoutMsg,
) -> Result<IbcBasicResponse, ContractError> {
    on_answer(deps, &msg.packet.data, |_| Answer::Timeout)
}
