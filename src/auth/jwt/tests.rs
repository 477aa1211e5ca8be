use super::*;
use crate::config::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
const RSA_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/rsa_public.pem");
const EC_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/ec_public.pem");

fn hs256_settings() -> JwtSettings {
    JwtSettings {
        hs256_secret: Some(Secret::new(SECRET)),
        ..JwtSettings::default()
    }
}

fn keys_settings(keys: &[&str]) -> JwtSettings {
    JwtSettings {
        public_keys: keys.iter().map(|k| k.to_string()).collect(),
        ..JwtSettings::default()
    }
}

fn verifier(settings: &JwtSettings) -> JwtVerifier {
    JwtVerifier::new(settings).expect("the test keys parse")
}

fn in_an_hour() -> u64 {
    get_current_timestamp() + 3600
}

fn claims() -> Value {
    json!({"sub": "user-1", "tenant": "acme", "scope": "read admin", "exp": in_an_hour()})
}

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    encode(&Header::new(algorithm), claims, key).expect("sign a test token")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

fn refusal(result: Result<Caller, AuthError>) -> String {
    match result {
        Err(AuthError::Refused(why)) => why,
        other => panic!("expected a 401 refusal, got {other:?}"),
    }
}

#[test]
fn a_good_hs256_token_becomes_its_caller() {
    let caller = verifier(&hs256_settings()).verify(&hs256(&claims()));
    let expected = Caller {
        tenant: "acme".into(),
        subject: "user-1".into(),
        scopes: vec!["read".into(), "admin".into()],
    };
    assert_eq!(caller.ok(), Some(expected));
}

#[test]
fn an_expired_token_is_refused_as_expired_and_the_token_is_not_echoed() {
    let mut expired = claims();
    expired["exp"] = json!(get_current_timestamp() - 120);
    let token = hs256(&expired);
    let why = refusal(verifier(&hs256_settings()).verify(&token));
    assert!(why.contains("expired"), "{why}");
    assert!(!why.contains(&token) && !why.contains("acme"), "{why}");
}

#[test]
fn expiry_within_the_leeway_is_tolerated() {
    let mut just_expired = claims();
    just_expired["exp"] = json!(get_current_timestamp() - 5);
    assert!(
        verifier(&hs256_settings())
            .verify(&hs256(&just_expired))
            .is_ok()
    );
}

#[test]
fn a_token_without_exp_is_refused() {
    let mut forever = claims();
    forever.as_object_mut().map(|c| c.remove("exp"));
    let why = refusal(verifier(&hs256_settings()).verify(&hs256(&forever)));
    assert!(why.contains("`exp`"), "{why}");
}

#[test]
fn a_token_before_its_nbf_is_refused() {
    let mut early = claims();
    early["nbf"] = json!(get_current_timestamp() + 600);
    let why = refusal(verifier(&hs256_settings()).verify(&hs256(&early)));
    assert!(why.contains("not valid yet"), "{why}");
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let other = EncodingKey::from_secret(b"another-secret-that-is-also-long-enough");
    let token = sign(Algorithm::HS256, &other, &claims());
    let why = refusal(verifier(&hs256_settings()).verify(&token));
    assert!(why.contains("signature"), "{why}");
}

#[test]
fn garbage_is_refused_as_not_a_jwt() {
    let why = refusal(verifier(&hs256_settings()).verify("not.a.jwt"));
    assert!(why.contains("JWT"), "{why}");
}

#[test]
fn a_token_without_tenant_or_subject_is_refused() {
    for missing in ["tenant", "sub"] {
        let mut partial = claims();
        partial.as_object_mut().map(|c| c.remove(missing));
        let why = refusal(verifier(&hs256_settings()).verify(&hs256(&partial)));
        assert!(why.contains(&format!("`{missing}`")), "{why}");
    }
}

#[test]
fn an_empty_tenant_is_refused() {
    let mut empty = claims();
    empty["tenant"] = json!("");
    refusal(verifier(&hs256_settings()).verify(&hs256(&empty)));
}

#[test]
fn configured_claim_names_are_read_instead_of_the_defaults() {
    let settings = JwtSettings {
        tenant_claim: "org".into(),
        subject_claim: "email".into(),
        scope_claim: "permissions".into(),
        ..hs256_settings()
    };
    let token = hs256(&json!({
        "org": "globex", "email": "a@globex.test", "permissions": ["admin"],
        "sub": "ignored", "tenant": "ignored", "exp": in_an_hour(),
    }));
    let caller = verifier(&settings).verify(&token).expect("a caller");
    assert_eq!(
        (caller.tenant.as_str(), caller.subject.as_str()),
        ("globex", "a@globex.test")
    );
    assert!(caller.is_admin());
}

#[test]
fn scope_may_be_a_string_an_array_or_absent() {
    let verifier = verifier(&hs256_settings());
    let cases = [
        (json!("read  write"), vec!["read", "write"]),
        (json!(["read", "write"]), vec!["read", "write"]),
        (Value::Null, vec![]),
    ];
    for (scope, expected) in cases {
        let mut c = claims();
        if let Some(c) = c.as_object_mut() {
            match scope {
                Value::Null => c.remove("scope"),
                scope => c.insert("scope".into(), scope),
            };
        }
        let caller = verifier.verify(&hs256(&c)).expect("a caller");
        assert_eq!(caller.scopes, expected);
    }
}

#[test]
fn a_scope_that_is_neither_string_nor_array_of_strings_is_refused() {
    for scope in [json!(7), json!(["read", 7])] {
        let mut c = claims();
        c["scope"] = scope;
        let why = refusal(verifier(&hs256_settings()).verify(&hs256(&c)));
        assert!(why.contains("`scope`"), "{why}");
    }
}

#[test]
fn issuer_and_audience_are_required_and_checked_when_configured() {
    let settings = JwtSettings {
        issuer: Some("https://idp.test".into()),
        audience: Some("ferry".into()),
        ..hs256_settings()
    };
    let verifier = verifier(&settings);
    let mut good = claims();
    good["iss"] = json!("https://idp.test");
    good["aud"] = json!("ferry");
    assert!(verifier.verify(&hs256(&good)).is_ok());
    let mut wrong_issuer = good.clone();
    wrong_issuer["iss"] = json!("https://evil.test");
    assert!(refusal(verifier.verify(&hs256(&wrong_issuer))).contains("iss"));
    let mut wrong_audience = good.clone();
    wrong_audience["aud"] = json!("someone-else");
    assert!(refusal(verifier.verify(&hs256(&wrong_audience))).contains("aud"));
    let mut no_issuer = good.clone();
    no_issuer.as_object_mut().map(|c| c.remove("iss"));
    assert!(refusal(verifier.verify(&hs256(&no_issuer))).contains("`iss`"));
}

#[test]
fn an_audience_in_the_token_is_ignored_when_none_is_configured() {
    let mut c = claims();
    c["aud"] = json!("anyone");
    assert!(verifier(&hs256_settings()).verify(&hs256(&c)).is_ok());
}

#[test]
fn an_rs256_token_verifies_against_the_rsa_public_key() {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("the RSA fixture");
    let token = sign(Algorithm::RS256, &key, &claims());
    let caller = verifier(&keys_settings(&[RSA_PUBLIC])).verify(&token);
    assert_eq!(caller.map(|c| c.tenant).ok().as_deref(), Some("acme"));
}

#[test]
fn an_es256_token_verifies_against_the_ec_public_key_among_several() {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("the EC fixture");
    let token = sign(Algorithm::ES256, &key, &claims());
    let settings = JwtSettings {
        public_keys: vec![RSA_PUBLIC.into(), EC_PUBLIC.into()],
        ..hs256_settings()
    };
    let caller = verifier(&settings).verify(&token);
    assert_eq!(caller.map(|c| c.subject).ok().as_deref(), Some("user-1"));
}

#[test]
fn an_rs256_token_is_refused_when_only_an_ec_key_is_configured() {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("the RSA fixture");
    let token = sign(Algorithm::RS256, &key, &claims());
    let why = refusal(verifier(&keys_settings(&[EC_PUBLIC])).verify(&token));
    assert!(why.contains("alg"), "{why}");
}

#[test]
fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
    let confused = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    let token = sign(Algorithm::HS256, &confused, &claims());
    let why = refusal(verifier(&keys_settings(&[RSA_PUBLIC])).verify(&token));
    assert!(why.contains("alg"), "{why}");
}

#[test]
fn an_unsigned_alg_none_token_is_refused() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        let settings = JwtSettings {
            public_keys: vec![RSA_PUBLIC.into()],
            ..hs256_settings()
        };
        refusal(verifier(&settings).verify(&token));
    }
}

#[test]
fn keys_that_are_not_public_rsa_or_p256_keys_are_refused_with_their_index() {
    for bad in [RSA_PRIVATE, "not a key"] {
        let error = JwtVerifier::new(&keys_settings(&[EC_PUBLIC, bad])).map(|_| ());
        let message = error.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("auth.jwt.public_keys[1]"), "{message}");
    }
}

#[test]
fn the_leeway_setting_reaches_the_validation() {
    let settings = JwtSettings {
        leeway: Duration::from_secs(0),
        ..hs256_settings()
    };
    let mut just_expired = claims();
    just_expired["exp"] = json!(get_current_timestamp() - 5);
    refusal(verifier(&settings).verify(&hs256(&just_expired)));
}
