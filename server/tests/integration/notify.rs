//! Notification e-mail: a new request is announced to its approver over SMTP (here a local sink).
use std::time::Duration;

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

use server::ciba::ids::page_ref;

use crate::{common::*, on_both_databases};

on_both_databases!(a_new_request_is_announced_by_email);

/// A minimal SMTP receiver on loopback that hands over each message's whole transcript.
pub(crate) async fn smtp_sink() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(converse(socket, tx.clone()));
        }
    });
    (url, rx)
}

async fn converse(socket: TcpStream, mails: mpsc::UnboundedSender<String>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let (mut transcript, mut in_data) = (String::new(), false);
    while let Some(line) = lines.next_line().await? {
        transcript.push_str(&line);
        transcript.push('\n');
        if in_data {
            if line == "." {
                in_data = false;
                let _ = mails.send(std::mem::take(&mut transcript));
                write.write_all(b"250 queued\r\n").await?;
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink\r\n",
            "DATA" => {
                in_data = true;
                b"354 end with <CRLF>.<CRLF>\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 OK\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

async fn a_new_request_is_announced_by_email(db: Db) {
    let (url, mut mails) = smtp_sink().await;
    let h = Harness::with_config(db, |c| c.smtp_url = Some(url)).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let id = h.start(&creds, APPROVER).await;
    let mail = tokio::time::timeout(Duration::from_secs(10), mails.recv())
        .await
        .expect("an e-mail within 10 s")
        .unwrap();
    // The body is quoted-printable: undo its soft line breaks before looking for the link.
    let mail = mail.replace("=\n", "");
    assert!(mail.contains(&format!("RCPT TO:<{APPROVER}>")), "{mail}");
    assert!(
        mail.contains("Subject: Approval needed: Refund $120.00"),
        "{mail}"
    );
    assert!(
        mail.contains("Refund $120.00 - jane@example.com for order #1234"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("http://localhost:3000/requests/{}", page_ref(&id))),
        "{mail}"
    );
    assert!(!mail.contains(&creds.secret), "no secrets in notifications");
    assert!(!mail.contains(&id), "nor the auth_req_id the agent redeems");
}
