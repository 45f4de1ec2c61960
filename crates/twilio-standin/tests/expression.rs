//! The TaskRouter expression evaluator behind `EvaluateTaskAttributes`.

use serde_json::{json, Value};
use twilio_standin::TaskExpression;

fn attributes() -> Value {
    json!({
        "transferTargetType": "worker",
        "transferQueueName": "",
        "priority_level": 3,
        "ratio": 0.5,
        "workerParked": true,
        "email": "ana@example.com",
        "skills": ["english", "billing", 7],
        "workerSidsInConversation": ["WK01", "WK02"],
        "conversations": {"conversation_id": "WT42", "media": [{"conversation_sid": "CH1"}]},
        "nothing": null,
    })
}

fn eval(expression: &str) -> bool {
    TaskExpression::parse(expression)
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .matches(&attributes())
}

fn error(expression: &str) -> (String, usize) {
    let e = TaskExpression::parse(expression).expect_err(expression);
    (e.message, e.position)
}

#[test]
fn equality_of_strings_numbers_and_booleans() {
    assert!(eval("transferTargetType == 'worker'"));
    assert!(eval("transferTargetType == \"worker\""));
    assert!(!eval("transferTargetType == 'queue'"));
    assert!(eval("transferTargetType != 'queue'"));
    assert!(!eval("transferTargetType != 'worker'"));
    assert!(eval("transferQueueName == ''"));
    assert!(eval("priority_level == 3"));
    assert!(eval("priority_level == 3.0"));
    assert!(!eval("priority_level == '3'"));
    assert!(eval("workerParked == true"));
    assert!(eval("workerParked != false"));
    assert!(eval("1 == 1"));
    assert!(eval("1==1"));
    assert!(!eval("1 == 2"));
    assert!(eval("'worker' == transferTargetType"));
}

#[test]
fn ordering_comparisons() {
    assert!(eval("priority_level > 2"));
    assert!(!eval("priority_level > 3"));
    assert!(eval("priority_level >= 3"));
    assert!(eval("priority_level < 4"));
    assert!(!eval("priority_level < 3"));
    assert!(eval("priority_level <= 3"));
    assert!(eval("ratio < 1"));
    assert!(eval("ratio > -1.5"));
    assert!(eval("email > 'a'"));
    assert!(!eval("email < 'a'"));
    // A number against a string is neither greater nor smaller.
    assert!(!eval("priority_level > 'a'"));
    assert!(!eval("priority_level < 'a'"));
}

#[test]
fn lists_in_not_in_has_contains() {
    assert!(eval("transferTargetType IN ['worker', 'queue']"));
    assert!(!eval("transferTargetType IN ['queue']"));
    assert!(eval("transferTargetType NOT IN ['queue']"));
    assert!(!eval("transferTargetType NOT IN ['queue', 'worker']"));
    assert!(eval("priority_level IN [1, 2, 3]"));
    assert!(!eval("priority_level in []"));
    assert!(eval("'WK02' IN workerSidsInConversation"));
    assert!(eval("'WK03' NOT IN workerSidsInConversation"));
    assert!(eval("skills HAS 'billing'"));
    assert!(eval("skills HAS 7"));
    assert!(!eval("skills HAS 'french'"));
    assert!(!eval("email HAS 'ana'"));
    assert!(eval("email CONTAINS 'example.com'"));
    assert!(!eval("email CONTAINS 'twilio'"));
    assert!(eval("skills CONTAINS 'english'"));
    // IN against something that is not a list is false, NOT IN too.
    assert!(!eval("transferTargetType IN email"));
    assert!(!eval("transferTargetType NOT IN email"));
}

#[test]
fn dotted_paths_reach_nested_attributes() {
    assert!(eval("conversations.conversation_id == 'WT42'"));
    assert!(!eval("conversations.conversation_id == 'WT43'"));
    assert!(!eval("conversations.media == 'CH1'"));
    assert!(!eval("conversations.conversation_id.deeper == 'WT42'"));
}

#[test]
fn a_missing_attribute_makes_every_comparison_false() {
    for expression in [
        "missing == 'x'",
        "missing != 'x'",
        "missing > 1",
        "missing < 1",
        "missing >= 1",
        "missing <= 1",
        "missing IN ['x']",
        "missing NOT IN ['x']",
        "missing CONTAINS 'x'",
        "missing HAS 'x'",
        "'x' IN missing",
        "conversations.missing == 'x'",
        "nothing != 'x'",
        "nothing == nothing",
    ] {
        assert!(!eval(expression), "{expression}");
    }
    // NOT of a false comparison is true.
    assert!(eval("NOT (missing == 'x')"));
    assert!(eval("NOT missing == 'x'"));
}

#[test]
fn logic_precedence_and_parentheses() {
    assert!(eval(
        "transferTargetType == 'worker' AND priority_level == 3"
    ));
    assert!(!eval(
        "transferTargetType == 'worker' AND priority_level == 4"
    ));
    assert!(eval("transferTargetType == 'queue' OR priority_level == 3"));
    assert!(!eval(
        "transferTargetType == 'queue' OR priority_level == 4"
    ));
    // AND binds tighter than OR.
    assert!(eval("1 == 1 OR 1 == 2 AND 1 == 2"));
    assert!(!eval("(1 == 1 OR 1 == 2) AND 1 == 2"));
    // NOT binds tighter than AND.
    assert!(!eval("NOT 1 == 1 AND 1 == 1"));
    assert!(eval("NOT (1 == 1 AND 1 == 2)"));
    assert!(eval("NOT NOT 1 == 1"));
    assert!(eval("((transferTargetType == 'worker'))"));
    assert!(eval("workerParked"));
    assert!(!eval("email"));
    assert!(eval("true"));
    assert!(!eval("false"));
}

#[test]
fn keywords_are_case_insensitive() {
    assert!(eval(
        "transferTargetType == 'worker' and priority_level == 3"
    ));
    assert!(eval("transferTargetType == 'queue' Or priority_level == 3"));
    assert!(eval("not (1 == 2)"));
    assert!(eval("transferTargetType in ['worker']"));
    assert!(eval("transferTargetType not in ['queue']"));
    assert!(eval("skills has 'billing'"));
    assert!(eval("email contains 'example'"));
    assert!(eval("workerParked == TRUE"));
    assert!(eval("workerParked != False"));
}

#[test]
fn string_literals_escape_quotes() {
    let attributes = json!({"name": "O'Brien", "quote": "say \"hi\""});
    let parsed = TaskExpression::parse(r"name == 'O\'Brien'").unwrap();
    assert!(parsed.matches(&attributes));
    let parsed = TaskExpression::parse(r#"name == "O'Brien""#).unwrap();
    assert!(parsed.matches(&attributes));
    let parsed = TaskExpression::parse(r#"quote == 'say "hi"'"#).unwrap();
    assert!(parsed.matches(&attributes));
    let parsed = TaskExpression::parse("name == 'AND OR NOT'").unwrap();
    assert!(!parsed.matches(&attributes));
}

#[test]
fn unparseable_expressions_name_what_is_wrong_and_where() {
    assert_eq!(
        error(""),
        (
            "expected a value or an attribute, found the end of the expression".to_owned(),
            0
        )
    );
    assert_eq!(
        error("a == "),
        (
            "expected a value or an attribute, found the end of the expression".to_owned(),
            5
        )
    );
    assert_eq!(error("a = 1"), ("unexpected character '='".to_owned(), 2));
    assert_eq!(error("a == 'x"), ("unterminated string".to_owned(), 5));
    assert_eq!(
        error("(a == 1"),
        (
            "expected ')', found the end of the expression".to_owned(),
            7
        )
    );
    assert_eq!(error("a == 1)"), ("unexpected ')'".to_owned(), 6));
    assert_eq!(error("a == 1 b == 2"), ("unexpected 'b'".to_owned(), 7));
    assert_eq!(
        error("a IN ['x' 'y']"),
        ("expected ',' or ']', found string \"y\"".to_owned(), 10)
    );
    assert_eq!(
        error("a IN [b]"),
        (
            "expected a string, number or boolean in the list, found 'b'".to_owned(),
            6
        )
    );
    assert_eq!(
        error("a AND"),
        (
            "expected a value or an attribute, found the end of the expression".to_owned(),
            5
        )
    );
    assert_eq!(error("1.2.3 == a"), ("invalid number 1.2.3".to_owned(), 0));
    assert_eq!(
        error("a. == 1"),
        ("invalid attribute path a.".to_owned(), 0)
    );
    assert_eq!(error("a NOT b"), ("unexpected NOT".to_owned(), 2));
    assert_eq!(
        TaskExpression::parse("a == ").unwrap_err().to_string(),
        "expected a value or an attribute, found the end of the expression at character 5"
    );
}
