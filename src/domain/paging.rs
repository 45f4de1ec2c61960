//! Page sizes of the listings (`/api/v1/transfers`, `/api/v1/outbox`, `/api/v1/parks`, `baton
//! history`): one rule, one message.

/// Most rows one page holds.
pub const MAX_PAGE_SIZE: i64 = 500;

/// A page size as given: a whole number from 1 to [`MAX_PAGE_SIZE`]. The error completes a
/// sentence starting with the parameter's name (`limit "0" must be …`).
pub fn parse_page_size(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
        .ok_or_else(|| format!("{raw:?} must be a whole number from 1 to {MAX_PAGE_SIZE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_one_to_five_hundred_rows() {
        assert_eq!(parse_page_size("1"), Ok(1));
        assert_eq!(parse_page_size(" 500 "), Ok(500));
        for bad in ["0", "501", "-1", "ten", "", "1.5"] {
            assert_eq!(
                parse_page_size(bad),
                Err(format!("{bad:?} must be a whole number from 1 to 500"))
            );
        }
    }
}
