//! How the gateway reaches one node: over a channel it dials to the node's federation listener,
//! over the link the node dialled out to the gateway, or either (a live link first).
//!
//! Every client above it — the aggregate call under the whole tower stack, and any other
//! federation client — takes a [`NodeChannel`] where it would take a tonic `Channel`, so none
//! of them knows or cares which side dialled.

use crate::link::table::{LinkTable, NotLinked};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::transport::Channel;
use tower::{BoxError, Service, ServiceExt};

/// Which side opens the connection to a node.
#[derive(Clone)]
enum Reach {
    /// The gateway dials the node's federation listener.
    Dialled(Channel),
    /// The node dials out; its links are in the table.
    Linked(Arc<LinkTable>),
    /// Both: a live link first, the listener otherwise.
    Either(Channel, Arc<LinkTable>),
}

/// A gRPC channel to one facility node, whichever side dialled.
#[derive(Clone)]
pub struct NodeChannel {
    facility: String,
    reach: Reach,
}

impl NodeChannel {
    /// `facility`'s node at its federation listener over `dialled`, and/or over its links in
    /// `links`; `None` when given neither.
    pub fn new(
        facility: &str,
        dialled: Option<Channel>,
        links: Option<Arc<LinkTable>>,
    ) -> Option<Self> {
        let reach = match (dialled, links) {
            (Some(channel), Some(links)) => Reach::Either(channel, links),
            (None, Some(links)) => Reach::Linked(links),
            (Some(channel), None) => Reach::Dialled(channel),
            (None, None) => return None,
        };
        Some(Self {
            facility: facility.to_string(),
            reach,
        })
    }

    /// The channel a call would use now; for a node that only dials out and has no live link,
    /// why not (its coverage is "not linked", and nothing is sent).
    pub fn current(&self) -> Result<Channel, NotLinked> {
        match &self.reach {
            Reach::Dialled(channel) => Ok(channel.clone()),
            Reach::Linked(links) => links.channel(&self.facility),
            Reach::Either(channel, links) => Ok(links
                .channel(&self.facility)
                .unwrap_or_else(|_| channel.clone())),
        }
    }

    /// Whether a call now would go over a link the node dialled.
    pub fn linked_now(&self) -> bool {
        match &self.reach {
            Reach::Dialled(_) => false,
            Reach::Linked(links) | Reach::Either(_, links) => links.is_linked(&self.facility),
        }
    }
}

impl Service<http::Request<Body>> for NodeChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    /// Always ready: the chosen channel's own readiness is awaited inside the call.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.current() {
            Ok(channel) => Box::pin(async move { Ok(channel.oneshot(request).await?) }),
            Err(not_linked) => Box::pin(async move { Err(not_linked.into()) }),
        }
    }
}
