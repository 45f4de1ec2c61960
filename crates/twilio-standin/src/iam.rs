//! Flex token validation: `POST https://iam.twilio.com/v1/Accounts/{AccountSid}/Tokens/validate`
//! with Basic auth and the JSON body `{"token": "…"}`, as `twilio-flex-token-validator` calls it
//! (twilio/twilio-flex-token-validator `src/index.ts`). The answer is HTTP 200 either way; the
//! caller looks at `valid` (and `message` when it is false).

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::state::fmt_date;
use serde_json::json;

/// Error code for an unknown token (Twilio 20101 "Invalid Access Token").
const CODE_INVALID_TOKEN: u32 = 20101;
/// Error code for an expired token (Twilio 20104 "Access Token expired").
const CODE_EXPIRED_TOKEN: u32 = 20104;

pub(crate) fn validate_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let token = ctx.params.required("token")?;
    let invalid = |code: u32, message: &str| {
        json!({
            "valid": false,
            "code": code,
            "message": message,
            "expiration": null,
            "identity": null,
            "realm_user_id": null,
            "worker_sid": null,
            "roles": null,
            "flex_instance_sid": null,
            "flex_user_sid": null,
        })
    };
    let body = match ctx.state.tokens.get(token) {
        None => invalid(CODE_INVALID_TOKEN, "Invalid Access Token"),
        Some(t) if t.expiration <= ctx.now => invalid(CODE_EXPIRED_TOKEN, "Access Token expired"),
        Some(t) => json!({
            "valid": true,
            "code": 0,
            "message": null,
            "expiration": fmt_date(t.expiration),
            "identity": t.identity,
            "realm_user_id": t.identity,
            "worker_sid": t.worker_sid,
            "roles": t.roles,
            "flex_instance_sid": ctx.state.settings.flex_instance_sid,
            "flex_user_sid": null,
        }),
    };
    Ok(Reply::json(200, body))
}
