//! Unit tests of the fast path of the extractor.

use super::*;

fn make_plan(path: Option<&str>) -> Option<Plan> {
    let compiled = path.map(|p| JsonPath::parse(p).unwrap());
    Plan::new(
        compiled.as_ref(),
        path,
        None,
        &["$.choices[0].delta.content", "$.choices[0].message.content"],
    )
}

#[test]
fn simple_paths_only() {
    for p in [
        "$.choices[0].delta.content",
        "$['choices'][0]['delta'][\"content\"]",
        "$.a_b.c1[12]",
    ] {
        assert!(make_plan(Some(p)).is_some(), "{p}");
    }
    for p in [
        "$.choices[-1].delta.content",
        "$.choices[*].delta.content",
        "$..content",
        "$.choices[0:1].x",
        "$.a[?@.b]",
        "$['a\\'b']",
        "$['a','b']",
        "$.a[01]",
        "$ .a",
        "$",
    ] {
        let compiled = JsonPath::parse(p);
        if let Ok(compiled) = compiled {
            assert!(
                Plan::new(Some(&compiled), Some(p), None, &[]).is_none(),
                "{p}"
            );
        }
    }
}

#[test]
fn reads_like_a_value() {
    let plan = make_plan(None).unwrap();
    let s = plan
        .scan(r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#)
        .unwrap();
    assert_eq!(s.content, Found::Str(Cow::Borrowed("Hi")));
    assert_eq!(s.choice_index, Some(0));
    assert_eq!(s.finish_reason, None);
    // The last of duplicated keys wins, as in a `Value`.
    let dup = r#"{"choices":[{"delta":{"content":"a"}}],"choices":[{"delta":{}}, 1]}"#;
    let configured = make_plan(Some("$.choices[0].delta.content")).unwrap();
    assert_eq!(configured.scan(dup).unwrap().content, Found::Absent);
    // Nothing in the default chain's simple paths: left to the general path.
    assert!(plan.scan(dup).is_none());
    let dup = r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#;
    assert_eq!(
        plan.scan(dup).unwrap().content,
        Found::Str(Cow::Borrowed("b"))
    );
    let s = plan.scan(r#"{"choices":[{"delta":{"content":"a\nb"}}]}"#);
    assert_eq!(s.unwrap().content, Found::Str(Cow::Borrowed("a\nb")));
    // Not a `Value`: refused.
    assert!(
        plan.scan(r#"{"choices":[{"delta":{"content":"\ud83d"}}]}"#)
            .is_none()
    );
    assert!(plan.scan(r#"{"x":1e400,"choices":[]}"#).is_none());
    assert!(plan.scan(r#"{"choices":[]} x"#).is_none());
    assert!(plan.scan(r#"["choices"]"#).is_none());
    assert!(
        plan.scan(r#"{"error":{"message":"x"},"choices":[{"delta":{"content":"a"}}]}"#)
            .is_none()
    );
    assert!(
        plan.scan(r#"{"usage":{},"choices":[{"delta":{"content":"a"}}]}"#)
            .is_none()
    );
    let s = plan
        .scan(r#"{"usage":null,"error":null,"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}"#)
        .unwrap();
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
}
