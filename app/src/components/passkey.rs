//! The passkey ceremonies in the browser: `navigator.credentials.create/get` with the options the server
//! sent, returning the authenticator's response for the server to verify. Only the hydrated app runs
//! them; during server rendering they are never called.
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

#[cfg(feature = "hydrate")]
mod browser {
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    /// A person-readable reason for a failed ceremony (the DOMException names of WebAuthn §5.1.3/5.1.4).
    pub fn explain(error: JsValue) -> String {
        let name = js_sys::Reflect::get(&error, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .unwrap_or_default();
        match name.as_str() {
            "NotAllowedError" => {
                "The passkey prompt was cancelled or timed out. Try again when you are ready."
                    .into()
            }
            "InvalidStateError" => "This passkey is already registered for your account.".into(),
            "AbortError" => "The passkey prompt was closed.".into(),
            "SecurityError" => "This page's address does not match the passkey's site.".into(),
            "NotSupportedError" => "This browser or device cannot create or use passkeys.".into(),
            _ => "The passkey could not be used. Try again, or use another passkey.".into(),
        }
    }

    pub fn credentials() -> Result<web_sys::CredentialsContainer, String> {
        web_sys::window()
            .map(|w| w.navigator().credentials())
            .ok_or_else(|| "No browser window.".to_owned())
    }

    pub async fn settle(promise: js_sys::Promise) -> Result<web_sys::PublicKeyCredential, String> {
        let value = JsFuture::from(promise).await.map_err(explain)?;
        value
            .dyn_into::<web_sys::PublicKeyCredential>()
            .map_err(|_| "The browser returned no passkey.".to_owned())
    }
}

/// Creates a passkey (registration ceremony).
pub async fn create(
    options: CreationChallengeResponse,
) -> Result<RegisterPublicKeyCredential, String> {
    #[cfg(feature = "hydrate")]
    {
        let options: web_sys::CredentialCreationOptions = options.into();
        let promise = browser::credentials()?
            .create_with_options(&options)
            .map_err(browser::explain)?;
        Ok(browser::settle(promise).await?.into())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = options;
        Err("Passkeys need the page's script; please enable JavaScript.".into())
    }
}

/// Uses a passkey (authentication ceremony).
pub async fn get(options: RequestChallengeResponse) -> Result<PublicKeyCredential, String> {
    #[cfg(feature = "hydrate")]
    {
        let options: web_sys::CredentialRequestOptions = options.into();
        let promise = browser::credentials()?
            .get_with_options(&options)
            .map_err(browser::explain)?;
        Ok(browser::settle(promise).await?.into())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = options;
        Err("Passkeys need the page's script; please enable JavaScript.".into())
    }
}
