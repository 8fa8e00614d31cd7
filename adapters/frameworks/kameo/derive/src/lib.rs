//! # persevere-kameo-derive
//!
//! `#[derive(PersistentActor)]` for [persevere-kameo](https://docs.rs/persevere-kameo): implements
//! `persevere_kameo::PersistentActor` and the `persevere_kameo::SaveSnapshot` message for an
//! actor. The snapshot type is the actor's `Args` unless `#[snapshot(Type)]` names another.
//! Use it through `persevere_kameo::PersistentActor`.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, DeriveInput};

/// Implements `persevere_kameo::PersistentActor` (and the `SaveSnapshot` message) for an actor.
///
/// The snapshot type is `<Self as Actor>::Args`, or the type named by `#[snapshot(Type)]`.
/// The actor's first snapshot is stored by `spawn_persistent` (through `SaveSnapshot`).
#[proc_macro_derive(PersistentActor, attributes(snapshot))]
pub fn derive_persistent_actor(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let name = &input.ident;
    let snapshot = match snapshot_type(&input) {
        Ok(snapshot) => snapshot,
        Err(error) => return error.to_compile_error().into(),
    };
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let expanded = quote! {
        impl #impl_generics ::persevere_kameo::PersistentActor for #name #ty_generics #where_clause {
            type Snapshot = #snapshot;

            fn save_spawned(
                actor_ref: &::persevere_kameo::kameo::actor::ActorRef<Self>,
            ) -> impl ::std::future::Future<
                Output = ::std::result::Result<bool, ::persevere_kameo::Error>,
            > + ::std::marker::Send {
                ::persevere_kameo::persistent_actor::ask_first_snapshot(actor_ref)
            }
        }

        impl #impl_generics ::persevere_kameo::kameo::message::Message<::persevere_kameo::SaveSnapshot>
            for #name #ty_generics #where_clause
        {
            type Reply = ::std::result::Result<(), ::persevere_kameo::Error>;

            async fn handle(
                &mut self,
                _: ::persevere_kameo::SaveSnapshot,
                ctx: &mut ::persevere_kameo::kameo::message::Context<Self, Self::Reply>,
            ) -> Self::Reply {
                ::persevere_kameo::persistent_actor::save_for_message(&*self, ctx.actor_ref()).await
            }
        }
    };
    expanded.into()
}

/// The type in `#[snapshot(Type)]`, or the actor's `Args`.
fn snapshot_type(input: &DeriveInput) -> syn::Result<syn::Type> {
    for attr in &input.attrs {
        if attr.path().is_ident("snapshot") {
            return attr.parse_args::<syn::Type>();
        }
    }
    Ok(syn::parse_quote! { <Self as ::persevere_kameo::kameo::actor::Actor>::Args })
}
