//! lambda-hello: answers every request with "hello". Built with the workspace's release
//! profile, it is the floor for `lambda-init`'s size and init figures.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_request: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
