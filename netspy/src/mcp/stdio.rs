//! MCP on stdin/stdout, one JSON-RPC message per line, through the same gate as HTTP
//! (`jsonrpc.rs`): a line that is not a valid message gets its JSON-RPC error on stdout
//! (rmcp's own stdio transport skips it, leaving the client waiting forever), a line over
//! the message limit is answered and skipped without being held in memory, and the server
//! keeps reading.

use rmcp::{
    RoleServer, ServerHandler, ServiceExt,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    service::RunningService,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::PollSender;

use super::jsonrpc::{self, MAX_MESSAGE_BYTES};

/// A line read within the limit, or how reading ended.
enum Line {
    Text(Vec<u8>),
    TooLong,
    End,
}

/// The next line of `input`, holding at most `max` bytes of it.
async fn read_line<R: AsyncBufRead + Unpin>(input: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::End,
                (false, false) => Line::Text(line),
            });
        }
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        input.consume(used);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}

/// Serves `server` on `input`/`output` until the input ends. Wait for the service, then for
/// the returned writer, which ends once every answer is written.
pub async fn serve<S, R, W>(
    server: S,
    input: R,
    output: W,
) -> Result<
    (RunningService<RoleServer, S>, tokio::task::JoinHandle<()>),
    rmcp::service::ServerInitializeError,
>
where
    S: ServerHandler,
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(64);
    let (refusals, refused) = mpsc::channel::<Value>(64);
    tokio::spawn(read_input(BufReader::new(input), to_server, refusals));
    let writer = tokio::spawn(write_output(output, from_server, refused));
    let running = server
        .serve((PollSender::new(to_client), ReceiverStream::new(from_client)))
        .await?;
    Ok((running, writer))
}

/// Writes the server's messages and the gate's refusals, one per line, until both end.
async fn write_output<W: AsyncWrite + Unpin>(
    mut output: W,
    mut from_server: mpsc::Receiver<ServerJsonRpcMessage>,
    mut refused: mpsc::Receiver<Value>,
) {
    let (mut server_open, mut refusals_open) = (true, true);
    while server_open || refusals_open {
        let line = tokio::select! {
            message = from_server.recv(), if server_open => match message {
                Some(message) => serde_json::to_string(&message),
                None => {
                    server_open = false;
                    continue;
                }
            },
            refusal = refused.recv(), if refusals_open => match refusal {
                Some(refusal) => serde_json::to_string(&refusal),
                None => {
                    refusals_open = false;
                    continue;
                }
            },
        };
        let Ok(mut line) = line else {
            tracing::error!("an MCP message could not be serialized");
            continue;
        };
        line.push('\n');
        if output.write_all(line.as_bytes()).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
}

/// Reads messages until the input ends, passing valid ones to the server and answering
/// the others.
async fn read_input<R: AsyncBufRead + Unpin>(
    mut input: R,
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    refusals: mpsc::Sender<Value>,
) {
    loop {
        let verdict = match read_line(&mut input, MAX_MESSAGE_BYTES).await {
            Ok(Line::End) => return,
            Err(e) => {
                tracing::debug!("reading MCP input: {e}");
                return;
            }
            Ok(Line::TooLong) => Err(jsonrpc::Fault::too_large()),
            Ok(Line::Text(line)) => {
                let text = line.strip_suffix(b"\r").unwrap_or(&line);
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                jsonrpc::parse(text)
            }
        };
        let sent = match verdict {
            Ok(message) => to_server.send(message).await.is_ok(),
            Err(fault) if fault.notification => {
                tracing::debug!("ignored a broken notification: {}", fault.message);
                true
            }
            Err(fault) => refusals.send(fault.to_json()).await.is_ok(),
        };
        if !sent {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader, max).await.unwrap() {
                Line::End => return out,
                Line::TooLong => out.push(None),
                Line::Text(t) => out.push(Some(t)),
            }
        }
    }

    #[tokio::test]
    async fn lines_over_the_limit_are_skipped_whole() {
        let got = lines(b"short\nthis one is far too long\nok\nlast", 8).await;
        assert_eq!(
            got,
            vec![
                Some(b"short".to_vec()),
                None,
                Some(b"ok".to_vec()),
                Some(b"last".to_vec())
            ]
        );
        assert_eq!(lines(b"", 8).await, Vec::<Option<Vec<u8>>>::new());
        assert_eq!(lines(b"0123456789", 8).await, vec![None]);
    }
}
