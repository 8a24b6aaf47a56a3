use super::*;
use std::os::unix::fs::PermissionsExt;

async fn spawn_error(spec: SpawnSpec) -> SpawnError {
    match try_spawn(spec).await {
        Ok(_) => panic!("spawn should fail"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_program_missing_from_path_is_named() {
    let error = spawn_error(spec(&["pm-no-such-program", "arg"])).await;
    assert!(matches!(error, SpawnError::NotFound { .. }), "{error:?}");
    assert_eq!(error.to_string(), "test: executable `pm-no-such-program` not found (not in PATH)");
}

#[tokio::test]
async fn a_missing_program_path_is_named() {
    let error = spawn_error(spec(&["/nonexistent/pm-program"])).await;
    assert_eq!(error.to_string(), "test: executable `/nonexistent/pm-program` not found (no such file)");
}

#[tokio::test]
async fn a_missing_cwd_is_named_rather_than_the_program() {
    let mut spec = spec(&["sh", "-c", "true"]);
    spec.cwd = Some("/nonexistent/dir".into());
    let error = spawn_error(spec).await;
    assert!(matches!(error, SpawnError::NoCwd { .. }), "{error:?}");
    assert_eq!(error.to_string(), "test: working directory `/nonexistent/dir` does not exist");
}

#[tokio::test]
async fn an_empty_command_is_refused() {
    for command in [&[][..], &[""][..]] {
        let error = spawn_error(spec(command)).await;
        assert!(matches!(error, SpawnError::EmptyCommand { .. }), "{error:?}");
    }
}

#[tokio::test]
async fn a_file_without_execute_permission_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = spawn_error(spec(&[script.to_str().unwrap()])).await;
    assert!(matches!(error, SpawnError::PermissionDenied { .. }), "{error:?}");
    assert!(error.to_string().contains("permission denied"), "{error}");
}
