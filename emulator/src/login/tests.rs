use super::html_escape;

#[test]
fn reflected_text_is_escaped() {
    assert_eq!(
        html_escape("\"><script>alert('x')</script>&"),
        "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
    );
}
