//! An error with its causes, as one line: "outer: inner: innermost", so that the words of the
//! kernel, aya or the network reach the user.

/// `e` and each of its sources, joined by ": ", skipping a cause already in the text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_causes_once() {
        let chain = error_chain(&OuterError(
            "loading failed",
            std::io::Error::other("permission denied"),
        ));
        assert_eq!(chain, "loading failed: permission denied");
        let repeated = error_chain(&OuterError(
            "load: permission denied",
            std::io::Error::other("permission denied"),
        ));
        assert_eq!(repeated, "load: permission denied");
    }

    #[derive(Debug)]
    struct OuterError(&'static str, std::io::Error);

    impl std::fmt::Display for OuterError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for OuterError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }
}
