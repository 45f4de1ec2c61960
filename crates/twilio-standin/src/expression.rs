//! TaskRouter expressions over a task's attributes, as `EvaluateTaskAttributes` takes them
//! (`GET /v1/Workspaces/{WS}/Tasks?EvaluateTaskAttributes=…`).
//!
//! - Comparisons: `==`, `!=`, `>`, `<`, `>=`, `<=`, `IN`, `NOT IN`, `CONTAINS`, `HAS`.
//! - Logic: `AND`, `OR`, `NOT`, parentheses; `NOT` binds tighter than `AND`, `AND` tighter than
//!   `OR`.
//! - Operands: attribute paths (`conversations.conversation_id`), strings in single or double
//!   quotes (a backslash escapes the next character), numbers (`42`, `-1.5`), `true`, `false`,
//!   and list literals (`['a', 'b', 3]`).
//! - Keywords (`AND`, `in`, `Not`, `TRUE` …) in any case.
//!
//! What a comparison means:
//!
//! - A path that names no attribute (or `null`) makes the comparison false, `!=` and `NOT IN`
//!   included (`NOT (x == 1)` is still true when `x` is missing).
//! - `==` / `!=`: equal JSON values (numbers by value: `1 == 1.0`).
//! - `>`, `<`, `>=`, `<=`: two numbers by value, or two strings by code point; anything else is
//!   false.
//! - `a IN [list]` / `a NOT IN [list]`: whether the list holds a value equal to `a` (the right
//!   side may be a list attribute too); false when the right side is not a list.
//! - `a CONTAINS b`: a string `a` that has `b` as a substring, or a list `a` that holds `b`.
//! - `a HAS b`: a list `a` that holds `b` (TaskRouter's array membership).
//! - An operand alone (`workerParked`, `true`) is true when it is the JSON value `true`.

use serde_json::Value;
use std::fmt;

/// A parsed expression. [`TaskExpression::parse`] refuses what it cannot read;
/// [`TaskExpression::matches`] evaluates it against a task's attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskExpression(Node);

/// Why an expression could not be parsed: a message and the character offset it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpressionError {
    pub message: String,
    pub position: usize,
}

impl fmt::Display for ExpressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at character {}", self.message, self.position)
    }
}

impl std::error::Error for ExpressionError {}

impl TaskExpression {
    /// Parses `text`; an empty expression is an error.
    pub fn parse(text: &str) -> Result<TaskExpression, ExpressionError> {
        let tokens = lex(text)?;
        let mut parser = Parser {
            tokens,
            at: 0,
            end: text.chars().count(),
        };
        let node = parser.or()?;
        match parser.peek() {
            None => Ok(TaskExpression(node)),
            Some((token, position)) => Err(ExpressionError {
                message: format!("unexpected {token}"),
                position,
            }),
        }
    }

    /// Whether the attributes (a JSON object) satisfy the expression.
    pub fn matches(&self, attributes: &Value) -> bool {
        self.0.eval(attributes)
    }
}

// ---- tokens ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Path(String),
    Str(String),
    Num(f64),
    Bool(bool),
    Op(Op),
    And,
    Or,
    Not,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Path(p) => write!(f, "'{p}'"),
            Token::Str(s) => write!(f, "string {s:?}"),
            Token::Num(n) => write!(f, "number {n}"),
            Token::Bool(b) => write!(f, "{b}"),
            Token::Op(op) => write!(f, "operator {}", op.text()),
            Token::And => f.write_str("AND"),
            Token::Or => f.write_str("OR"),
            Token::Not => f.write_str("NOT"),
            Token::LParen => f.write_str("'('"),
            Token::RParen => f.write_str("')'"),
            Token::LBracket => f.write_str("'['"),
            Token::RBracket => f.write_str("']'"),
            Token::Comma => f.write_str("','"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    In,
    NotIn,
    Contains,
    Has,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::Contains => "CONTAINS",
            Op::Has => "HAS",
        }
    }
}

fn lex(text: &str) -> Result<Vec<(Token, usize)>, ExpressionError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |message: String, position: usize| ExpressionError { message, position };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let token = match two.as_str() {
            "==" => Some(Token::Op(Op::Eq)),
            "!=" => Some(Token::Op(Op::Ne)),
            ">=" => Some(Token::Op(Op::Ge)),
            "<=" => Some(Token::Op(Op::Le)),
            _ => None,
        };
        if let Some(token) = token {
            tokens.push((token, start));
            i += 2;
            continue;
        }
        let single = match c {
            '>' => Some(Token::Op(Op::Gt)),
            '<' => Some(Token::Op(Op::Lt)),
            '(' => Some(Token::LParen),
            ')' => Some(Token::RParen),
            '[' => Some(Token::LBracket),
            ']' => Some(Token::RBracket),
            ',' => Some(Token::Comma),
            _ => None,
        };
        if let Some(token) = single {
            tokens.push((token, start));
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(error("unterminated string".into(), start)),
                    Some('\\') => {
                        let escaped = chars
                            .get(i + 1)
                            .ok_or_else(|| error("unterminated string".into(), start))?;
                        value.push(*escaped);
                        i += 2;
                    }
                    Some(q) if *q == c => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        value.push(*other);
                        i += 1;
                    }
                }
            }
            tokens.push((Token::Str(value), start));
            continue;
        }
        let number_start =
            c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if number_start {
            i += 1;
            while chars
                .get(i)
                .is_some_and(|d| d.is_ascii_digit() || *d == '.')
            {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            let value = literal
                .parse::<f64>()
                .map_err(|_| error(format!("invalid number {literal}"), start))?;
            tokens.push((Token::Num(value), start));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while chars
                .get(i)
                .is_some_and(|d| d.is_alphanumeric() || *d == '_' || *d == '.')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word.ends_with('.') || word.contains("..") {
                return Err(error(format!("invalid attribute path {word}"), start));
            }
            let token = match word.to_ascii_uppercase().as_str() {
                "AND" => Token::And,
                "OR" => Token::Or,
                "NOT" => Token::Not,
                "IN" => Token::Op(Op::In),
                "CONTAINS" => Token::Op(Op::Contains),
                "HAS" => Token::Op(Op::Has),
                "TRUE" => Token::Bool(true),
                "FALSE" => Token::Bool(false),
                _ => Token::Path(word),
            };
            tokens.push((token, start));
            continue;
        }
        return Err(error(format!("unexpected character '{c}'"), start));
    }
    Ok(tokens)
}

// ---- syntax ----

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Vec<String>),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Compare(Operand, Op, Operand),
    Truthy(Operand),
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    /// The expression's length, for errors at its end.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<(&Token, usize)> {
        self.tokens.get(self.at).map(|(t, p)| (t, *p))
    }

    fn next(&mut self) -> Option<(Token, usize)> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn error_here(&self, expected: &str) -> ExpressionError {
        match self.peek() {
            Some((token, position)) => ExpressionError {
                message: format!("expected {expected}, found {token}"),
                position,
            },
            None => ExpressionError {
                message: format!("expected {expected}, found the end of the expression"),
                position: self.end,
            },
        }
    }

    fn or(&mut self) -> Result<Node, ExpressionError> {
        let mut node = self.and()?;
        while matches!(self.peek(), Some((Token::Or, _))) {
            self.at += 1;
            node = Node::Or(Box::new(node), Box::new(self.and()?));
        }
        Ok(node)
    }

    fn and(&mut self) -> Result<Node, ExpressionError> {
        let mut node = self.unary()?;
        while matches!(self.peek(), Some((Token::And, _))) {
            self.at += 1;
            node = Node::And(Box::new(node), Box::new(self.unary()?));
        }
        Ok(node)
    }

    fn unary(&mut self) -> Result<Node, ExpressionError> {
        if matches!(self.peek(), Some((Token::Not, _))) {
            self.at += 1;
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if matches!(self.peek(), Some((Token::LParen, _))) {
            self.at += 1;
            let node = self.or()?;
            return match self.next() {
                Some((Token::RParen, _)) => Ok(node),
                _ => {
                    self.at -= 1;
                    Err(self.error_here("')'"))
                }
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ExpressionError> {
        let left = self.operand()?;
        let op = match self.peek() {
            Some((Token::Op(op), _)) => {
                let op = *op;
                self.at += 1;
                op
            }
            Some((Token::Not, _))
                if matches!(self.tokens.get(self.at + 1), Some((Token::Op(Op::In), _))) =>
            {
                self.at += 2;
                Op::NotIn
            }
            _ => return Ok(Node::Truthy(left)),
        };
        let right = self.operand()?;
        Ok(Node::Compare(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, ExpressionError> {
        let Some((token, _)) = self.peek().map(|(t, p)| (t.clone(), p)) else {
            return Err(self.error_here("a value or an attribute"));
        };
        let operand = match token {
            Token::Path(path) => Operand::Path(path.split('.').map(str::to_owned).collect()),
            Token::Str(s) => Operand::Literal(Value::String(s)),
            Token::Num(n) => Operand::Literal(number(n)),
            Token::Bool(b) => Operand::Literal(Value::Bool(b)),
            Token::LBracket => {
                self.at += 1;
                return self.list();
            }
            _ => return Err(self.error_here("a value or an attribute")),
        };
        self.at += 1;
        Ok(operand)
    }

    /// After `[`: literals separated by commas, then `]`.
    fn list(&mut self) -> Result<Operand, ExpressionError> {
        let mut items = Vec::new();
        if matches!(self.peek(), Some((Token::RBracket, _))) {
            self.at += 1;
            return Ok(Operand::Literal(Value::Array(items)));
        }
        loop {
            let item = match self.peek() {
                Some((Token::Str(s), _)) => Value::String(s.clone()),
                Some((Token::Num(n), _)) => number(*n),
                Some((Token::Bool(b), _)) => Value::Bool(*b),
                _ => return Err(self.error_here("a string, number or boolean in the list")),
            };
            self.at += 1;
            items.push(item);
            match self.peek() {
                Some((Token::Comma, _)) => self.at += 1,
                Some((Token::RBracket, _)) => {
                    self.at += 1;
                    return Ok(Operand::Literal(Value::Array(items)));
                }
                _ => return Err(self.error_here("',' or ']'")),
            }
        }
    }
}

fn number(n: f64) -> Value {
    serde_json::Number::from_f64(n)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

// ---- evaluation ----

impl Operand {
    fn resolve<'a>(&'a self, attributes: &'a Value) -> Option<&'a Value> {
        let value = match self {
            Operand::Literal(value) => value,
            Operand::Path(path) => path
                .iter()
                .try_fold(attributes, |value, key| value.get(key))?,
        };
        (!value.is_null()).then_some(value)
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn holds(list: &Value, item: &Value) -> Option<bool> {
    list.as_array()
        .map(|items| items.iter().any(|i| same(i, item)))
}

impl Node {
    fn eval(&self, attributes: &Value) -> bool {
        match self {
            Node::Or(a, b) => a.eval(attributes) || b.eval(attributes),
            Node::And(a, b) => a.eval(attributes) && b.eval(attributes),
            Node::Not(a) => !a.eval(attributes),
            Node::Truthy(operand) => operand.resolve(attributes) == Some(&Value::Bool(true)),
            Node::Compare(left, op, right) => {
                let (Some(a), Some(b)) = (left.resolve(attributes), right.resolve(attributes))
                else {
                    return false;
                };
                use std::cmp::Ordering::*;
                match op {
                    Op::Eq => same(a, b),
                    Op::Ne => !same(a, b),
                    Op::Gt => order(a, b) == Some(Greater),
                    Op::Lt => order(a, b) == Some(Less),
                    Op::Ge => matches!(order(a, b), Some(Greater | Equal)),
                    Op::Le => matches!(order(a, b), Some(Less | Equal)),
                    Op::In => holds(b, a) == Some(true),
                    Op::NotIn => holds(b, a) == Some(false),
                    Op::Contains => match (a, b) {
                        (Value::String(a), Value::String(b)) => a.contains(b.as_str()),
                        (Value::Array(_), _) => holds(a, b) == Some(true),
                        _ => false,
                    },
                    Op::Has => holds(a, b) == Some(true),
                }
            }
        }
    }
}
