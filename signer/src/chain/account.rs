//! Account number and sequence: queried from the chain, then tracked locally by the
//! submitter (one increment per transaction accepted at CheckTx; resync on mismatch).

use anyhow::{anyhow, Context, Result};
use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::prost::Message;
use cosmrs::AccountId;

use super::client::Chain;

/// What signing needs from the account: its number and the next sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    pub number: u64,
    pub sequence: u64,
}

impl From<Account> for (u64, u64) {
    fn from(a: Account) -> Self {
        (a.number, a.sequence)
    }
}

impl Chain {
    /// `(account_number, sequence)` of an existing account, as committed.
    pub async fn account(&self, address: &AccountId) -> Result<(u64, u64)> {
        Ok(self.account_info(address).await?.into())
    }

    pub async fn account_info(&self, address: &AccountId) -> Result<Account> {
        let res: QueryAccountResponse = self
            .abci_query(
                "/cosmos.auth.v1beta1.Query/Account",
                QueryAccountRequest {
                    address: address.to_string(),
                },
            )
            .await
            .with_context(|| format!("account {address} (is it funded?)"))?;
        let any = res
            .account
            .ok_or_else(|| anyhow!("account {address} not found"))?;
        let base = BaseAccount::decode(any.value.as_slice()).context("decoding BaseAccount")?;
        Ok(Account {
            number: base.account_number,
            sequence: base.sequence,
        })
    }
}
