//! The realtime protocol's messages (API.md "Realtime"). Until change streams are built, a
//! client's `{"op":"ping"}` gets `{"op":"pong"}` and any other message an error event, so
//! clients can already connect, keep the socket alive and see a clear refusal.

use serde_json::{json, Value};

/// The answer to one text message from a client.
pub fn answer(message: &str) -> String {
    let parsed: Result<Value, _> = serde_json::from_str(message);
    let reply = match parsed {
        Err(e) => error(None, "invalid_message", &format!("not JSON: {e}")),
        Ok(v) => match v.get("op").and_then(Value::as_str) {
            Some("ping") => json!({"op": "pong"}),
            Some(op @ ("subscribe" | "unsubscribe" | "publish")) => error(
                v.get("id"),
                "not_available",
                &format!("\"{op}\" is not available yet: change streams are not built"),
            ),
            Some(op) => error(v.get("id"), "unknown_op", &format!("unknown op \"{op}\"")),
            None => error(v.get("id"), "invalid_message", "a message needs an \"op\""),
        },
    };
    reply.to_string()
}

fn error(id: Option<&Value>, code: &str, message: &str) -> Value {
    json!({"op": "error", "id": id.cloned().unwrap_or(Value::Null), "code": code, "message": message})
}

#[cfg(test)]
mod tests {
    use super::answer;
    use serde_json::{json, Value};

    fn reply(message: &str) -> Value {
        serde_json::from_str(&answer(message)).expect("JSON reply")
    }

    #[test]
    fn ping_gets_pong() {
        assert_eq!(reply(r#"{"op":"ping"}"#), json!({"op": "pong"}));
    }

    #[test]
    fn anything_else_gets_an_error_event_naming_the_message() {
        let r = reply(r#"{"op":"subscribe","id":"s1","table":"public.todos"}"#);
        assert_eq!(r["op"], "error");
        assert_eq!(r["id"], "s1");
        assert_eq!(r["code"], "not_available");
        assert_eq!(reply(r#"{"op":"dance"}"#)["code"], "unknown_op");
        assert_eq!(reply("{").get("code"), Some(&json!("invalid_message")));
        assert_eq!(reply("[1]")["code"], "invalid_message");
    }
}
