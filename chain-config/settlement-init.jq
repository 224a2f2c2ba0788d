# InstantiateMsg of the settlement contract on the local zone (jq program; inputs:
# $c = consortium address, $gov = x/gov module account, $denom = the zone's denom).
# params null = the contract's documented defaults (docs/CONTRACTS.md).
{consortium: $c, denom: $denom, params: null, admin: $gov}
