use super::*;
use pm_runtimes::Stream;

fn texts(lines: &[OutputLine]) -> Vec<&str> {
    lines.iter().map(|line| line.line.as_str()).collect()
}

#[tokio::test]
async fn a_burst_of_100k_lines_arrives_complete_and_in_order() {
    let script = "import sys; sys.stdout.write(''.join(f'{i}\\n' for i in range(100000)))";
    let mut spawned = spawn(spec(&["python3", "-c", script])).await;
    let lines = all_lines(&mut spawned.output).await;
    assert_eq!(lines.len(), 100_000);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line.line, i.to_string());
        assert_eq!(line.stream, Stream::Stdout);
    }
    assert!(lines.windows(2).all(|pair| pair[0].at <= pair[1].at), "timestamps go forward");
    assert_eq!(within(spawned.handle.wait()).await.code, Some(0));
}

#[tokio::test]
async fn a_final_line_without_newline_is_delivered_and_crlf_stripped() {
    let mut spawned = spawn(sh("printf 'first\\r\\n\\nno newline'")).await;
    assert_eq!(texts(&all_lines(&mut spawned.output).await), ["first", "", "no newline"]);
}

#[tokio::test]
async fn invalid_utf8_is_replaced() {
    let mut spawned = spawn(sh("printf 'ok\\377\\376bad\\n'")).await;
    assert_eq!(texts(&all_lines(&mut spawned.output).await), ["ok\u{FFFD}\u{FFFD}bad"]);
    assert_eq!(within(spawned.handle.wait()).await.code, Some(0));
}

#[tokio::test]
async fn stderr_lines_are_tagged() {
    let mut spawned = spawn(sh("echo out; echo err >&2")).await;
    let mut lines: Vec<(Stream, String)> =
        all_lines(&mut spawned.output).await.into_iter().map(|line| (line.stream, line.line)).collect();
    // The two pipes are read independently: order is kept per stream only.
    lines.sort_by_key(|(stream, _)| *stream == Stream::Stderr);
    assert_eq!(lines, [(Stream::Stdout, "out".into()), (Stream::Stderr, "err".into())]);
}

#[tokio::test]
async fn over_long_lines_are_split() {
    let script = "import sys; sys.stdout.write('x' * (2 * 1024 * 1024 + 5) + '\\nend')";
    let mut spawned = spawn(spec(&["python3", "-c", script])).await;
    let lengths: Vec<usize> = all_lines(&mut spawned.output).await.iter().map(|line| line.line.len()).collect();
    assert_eq!(lengths, [1 << 20, 1 << 20, 5, 3]);
}

#[tokio::test]
async fn env_is_added_to_the_inherited_one_and_cwd_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sh("echo \"$PM_TEST_VAR\"; echo \"$PATH\"; pwd -P");
    spec.env = vec![("PM_TEST_VAR".into(), "value".into())];
    spec.cwd = Some(dir.path().to_path_buf());
    let mut spawned = spawn(spec).await;
    let cwd = dir.path().canonicalize().unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(texts(&all_lines(&mut spawned.output).await), ["value", path.as_str(), cwd.to_str().unwrap()]);
}
