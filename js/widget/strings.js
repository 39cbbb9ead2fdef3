/**
 * The widget's words in Canadian French and English, and how it writes money and time.
 *
 * A member's locale picks the language (`fr`, `fr-CA`, `fr_FR`... are fr-CA; anything
 * else is en); the widget's language menu switches it. Every string the widget shows
 * comes from here; members' own words never do (they are inserted as text).
 */

export const LOCALES = ["fr-CA", "en"];

/** The widget's language for a member's locale. */
export function pickLocale(locale) {
  return /^fr\b|^fr[-_]/i.test(locale ?? "") ? "fr-CA" : "en";
}

const KINDS_FR = { email: "une adresse courriel", phone: "un numéro de téléphone", social: "un identifiant de réseau social" };
const KINDS_EN = { email: "an e-mail address", phone: "a phone number", social: "a social-media handle" };

function listWords(items, and) {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} ${and} ${items[items.length - 1]}`;
}

const fr = {
  lang: "fr-CA",
  intl: "fr-CA", // numbers, money and dates
  languageName: "Français",
  language: "Langue",
  widgetLabel: "Clavardage du marché",
  connecting: "Connexion…",
  reconnecting: "Connexion perdue, reconnexion…",
  closed: "Déconnecté. Rechargez la page.",
  startProblems: {
    expired: { what: "Votre session a expiré.", next: "Rechargez la page ou reconnectez-vous." },
    refused: { what: "Cette conversation ne vous est pas ouverte.", next: "Vérifiez que vous êtes connecté·e avec le bon compte." },
    offline: { what: "Impossible de joindre la messagerie.", next: "Vérifiez votre connexion Internet, puis réessayez." },
    unavailable: { what: "La messagerie est momentanément indisponible.", next: "Vos messages sont conservés. Réessayez dans quelques minutes." },
  },
  linkProblems: {
    expired: { what: "Ce lien a expiré.", next: "Ouvrez la conversation depuis « Mes commandes » dans l'application : elle vous y attend." },
    refused: { what: "Cette conversation ne peut pas être ouverte avec ce lien.", next: "Ouvrez-la depuis « Mes commandes » dans l'application." },
  },
  retry: "Réessayer",
  openApp: "Ouvrir l'application",
  signedInAs: (name) => `Connecté·e : @${name}`,
  back: "Retour",
  catalog: "Articles à vendre",
  by: (name) => `Vendu par @${name}`,
  watching: (n) => (n > 1 ? `${n} membres regardent cet article` : "1 membre regarde cet article"),

  bell: (n) => (n ? `Notifications, ${n} non lue${n > 1 ? "s" : ""}` : "Notifications, aucune non lue"),
  notifications: "Notifications",
  noNotifications: "Aucune notification.",
  close: "Fermer",

  myOrders: "Mes commandes",
  sales: "Ventes",
  purchases: "Achats",
  noOrders: "Aucune commande pour l'instant.",
  openChat: (name, title) => `Ouvrir la conversation avec @${name} au sujet de « ${title} »`,
  unreadCount: (n) => `${n} non lu${n > 1 ? "s" : ""}`,
  counterpartBuyer: (name) => `Acheteur : @${name}`,
  counterpartSeller: (name) => `Vendeur : @${name}`,
  lastBy: (name, text) => `@${name} : ${text}`,
  someone: "un membre",
  orderNumber: (id) => `Commande ${id}`,
  status: {
    created: "Commande créée",
    shipped: "Expédiée",
    delivered: "Livrée",
    return_requested: "Retour demandé",
    return_accepted: "Retour accepté",
    return_declined: "Retour refusé",
    completed: "Terminée",
    cancelled: "Annulée",
  },

  price: "Prix",
  buy: "Acheter",
  buyNote: "Le paiement se fait dans l'application du marché.",
  makeOffer: "Faire une offre",
  offerAmount: "Votre offre ($)",
  sendOffer: "Envoyer l'offre",
  cancel: "Annuler",
  offerBelowPrice: (max) => `Votre offre doit être inférieure au prix de l'article (${max}).`,
  badAmount: "Entrez un montant, par exemple 45 ou 45,50.",

  sellerTools: "Outils du vendeur",
  offersSwitch: "Accepter les offres des acheteurs",
  offersOnNote: "Les acheteurs voient « Faire une offre » à côté de « Acheter ».",
  offersOffNote: "Activez l'option pour que les acheteurs puissent vous faire une offre.",
  likers: "Membres qui ont ajouté l'article en favori",
  showLikers: "Voir les membres qui ont mis l'article en favori",
  noLikers: "Personne n'a encore ajouté cet article en favori.",
  likedAt: (when) => `en favori ${when}`,
  sendOfferTo: (name) => `Envoyer l'offre à @${name}`,
  sendOfferShort: "Envoyer l'offre",
  globalOffer: "Faire une offre globale",
  globalOfferTo: "Offre globale : aux 20 membres les plus récents qui ont l'article en favori",
  offerToOne: (name) => `Offre à @${name}`,
  hasOpenOffer: "offre en cours",
  tenPercentRule: (max) =>
    `La réduction doit être d'au moins 10 % du prix de l'article, sans les frais de livraison, de Protection acheteur et les taxes : votre prix peut aller jusqu'à ${max}. Vos acheteurs auront 72 heures pour accepter ou faire une contre-offre; sans réponse, l'offre expire.`,
  tenPercentBroken: (max) => `Réduction insuffisante : proposez au plus ${max}.`,
  sentTo: (n) => (n > 1 ? `Offre envoyée à ${n} membres.` : n === 1 ? "Offre envoyée à 1 membre." : "Aucune offre envoyée."),
  skipped: (name, reason) => `@${name} : ${{ offer_exists: "a déjà une offre en cours", not_a_liker: "n'a pas l'article en favori", own_listing: "c'est votre article" }[reason] ?? reason}`,

  negotiations: "Offres",
  negotiationWith: (name) => `Offre avec @${name}`,
  itemPrice: (p) => `Prix de l'article : ${p}`,
  currentPrice: (p, pct) => `Prix proposé : ${p} (−${pct} %)`,
  priceBy: { buyer: "Acheteur", seller: "Vendeur" },
  priceStep: (by, p) => `${{ buyer: "Acheteur", seller: "Vendeur" }[by] ?? by} : ${p}`,
  yourTurn: "À vous de répondre",
  theirTurn: { buyer: "En attente de la réponse de l'acheteur", seller: "En attente de la réponse du vendeur" },
  expiresIn: (left) => `Expire dans ${left}`,
  state: {
    open: "En cours",
    accepted: "Acceptée",
    declined: "Refusée",
    withdrawn: "Retirée",
    expired: "Expirée",
    item_sold: "Article vendu",
  },
  agreed: (p) => `Prix convenu : ${p}. L'achat se fait dans l'application du marché.`,
  accept: "Accepter",
  decline: "Refuser",
  counter: "Faire une contre-offre",
  counterAmount: "Votre contre-offre ($)",
  sendCounter: "Envoyer la contre-offre",
  withdraw: "Retirer l'offre",

  comments: "Commentaires",
  commentsHelp: "Les questions et les réponses apparaissent ici, sous les photos et le prix. Les conversations privées ne sont possibles qu'après l'achat.",
  noComments: "Aucun commentaire pour l'instant. Posez une question!",
  olderComments: "Commentaires précédents",
  yourComment: "Votre commentaire",
  commentPlaceholder: "Posez une question… (tapez @ pour identifier un membre)",
  post: "Publier",
  suggestions: "Membres",
  suggestionsCount: (n) => (n ? `${n} suggestion${n > 1 ? "s" : ""} : flèches pour choisir, Entrée pour insérer` : ""),
  edited: "(modifié)",
  deleted: "Commentaire supprimé.",
  removed: "Commentaire retiré par la modération.",
  held: "Commentaire masqué en attente de vérification.",
  blockedComment: (name) => `Commentaire masqué : vous avez bloqué @${name}.`,
  block: "Bloquer",
  blockWho: (name) => `Bloquer @${name}`,
  unblock: "Débloquer",
  unblockWho: (name) => `Débloquer @${name}`,
  report: "Signaler",
  reportWhat: (name) => `Signaler le commentaire de @${name}`,
  reportTitle: "Signaler ce commentaire à la modération",
  reportReason: "Motif",
  reportNote: "Précisions (facultatif)",
  sendReport: "Envoyer le signalement",
  reportSent: "Merci : la modération va examiner ce commentaire. La personne signalée ne saura pas qui l'a signalée.",
  reportAlready: "Vous avez déjà signalé ce commentaire.",
  reasons: {
    spam: "Pourriel",
    scam: "Arnaque",
    off_platform: "Transaction hors de la plateforme",
    harassment: "Harcèlement",
    inappropriate: "Contenu inapproprié",
    other: "Autre",
    illegal: "Contenu illégal",
    terms: "Conditions d'utilisation",
  },
  restrictions: { read_only: "lecture seule", suspended: "compte suspendu" },
  maskedBadge: "Coordonnées masquées",
  maskedNotice: (kinds) =>
    `Nous avons masqué ${listWords(kinds.map((k) => KINDS_FR[k] ?? k), "et")} dans votre message : pas besoin d'échanger vos coordonnées. Les transactions conclues hors de la plateforme ne sont pas couvertes par la protection des acheteurs.`,
  notified: (n) => (n > 1 ? `${n} membres identifiés ont été avisés.` : "Le membre identifié a été avisé."),
  privacyTip: "Pas besoin d'échanger votre adresse courriel, votre numéro de téléphone ou vos réseaux sociaux.",

  conversation: "Conversation privée",
  conversationAbout: (title) => `Conversation privée : ${title}`,
  online: "en ligne",
  offline: "hors ligne",
  typing: (name) => `@${name} écrit…`,
  seen: "Vu",
  yourMessage: "Votre message",
  messagePlaceholder: "Écrivez un message… (adresse, numéro de suivi, retour)",
  send: "Envoyer",
  disclaimer: "Les transactions effectuées en dehors de la plateforme ne sont pas couvertes par la protection des acheteurs.",
  readOnly: "Cette conversation est terminée : elle reste lisible.",
  orderOpened:
    "Commande confirmée. Utilisez cette conversation privée pour confirmer l'adresse, donner un numéro de suivi, discuter d'un retour ou vérifier le statut de la commande.",
  system: {
    listing_edited: "Le vendeur a modifié l'annonce.",
    listing_photos_added: (n) => (n > 1 ? `Le vendeur a ajouté ${n} photos.` : "Le vendeur a ajouté une photo."),
    listing_price_changed: "Le vendeur a changé le prix.",
    listing_status_changed: "Le statut de l'annonce a changé.",
  },
  trackParcel: "Suivre le colis",
  sessionExpired: "Ce lien a expiré : ouvrez la conversation depuis « Mes commandes » dans l'application.",

  notification: {
    mention: (n) => `@${n.author?.name} vous a identifié·e : « ${n.excerpt} »`,
    order_opened: (n) =>
      n.role === "seller" ? `Vendu : ${n.listing_title ?? n.listing_id}. La conversation privée est ouverte.` : `Commande confirmée : ${n.listing_title ?? n.listing_id}. La conversation privée est ouverte.`,
    order_message: (n) => `@${n.author?.name} (commande ${n.order_id}) : « ${n.excerpt} »`,
    order_status: (n, t) => `Commande ${n.order_id} : ${t.status[n.status] ?? n.status}${n.tracking_number ? ` (suivi ${n.tracking_number})` : ""}`,
    offer_received: (n, t, m) => `@${n.author?.name} vous offre ${m} pour « ${n.listing_title ?? n.listing_id} »`,
    offer_countered: (n, t, m) => `@${n.author?.name} propose ${m} pour « ${n.listing_title ?? n.listing_id} »`,
    offer_accepted: (n, t, m) => `@${n.author?.name} a accepté ${m} pour « ${n.listing_title ?? n.listing_id} »`,
    offer_declined: (n, t, m) => `@${n.author?.name} a refusé ${m} pour « ${n.listing_title ?? n.listing_id} »`,
    offer_withdrawn: (n, t, m) => `@${n.author?.name} a retiré son offre de ${m} pour « ${n.listing_title ?? n.listing_id} »`,
    offer_expired: (n, t, m) => `L'offre de ${m} pour « ${n.listing_title ?? n.listing_id} » a expiré.`,
    offer_item_sold: (n) => `« ${n.listing_title ?? n.listing_id} » a été vendu : l'offre est fermée.`,
    moderation: (n, t) =>
      n.action === "member_restricted"
        ? `Votre compte est restreint (${t.restrictions[n.restriction] ?? n.restriction}) : ${n.statement}`
        : `Votre commentaire a été retiré par la modération (${t.reasons[n.reason] ?? n.reason}) : ${n.statement}`,
    other: "Nouvelle notification",
  },

  errors: {
    order_required: "Une conversation privée n'est possible qu'après l'achat.",
    forbidden: "Vous n'avez pas accès à ceci.",
    not_found: "Introuvable : l'annonce a peut-être été supprimée.",
    rate_limited: "Trop de messages d'un coup : réessayez dans un instant.",
    unavailable: "Service momentanément indisponible : réessayez.",
    too_large: "Message trop long.",
    contact_details: "Pas de coordonnées dans les messages : gardez l'échange sur la plateforme.",
    offers_disabled: "Le vendeur n'accepte pas les offres pour cet article.",
    listing_unavailable: "Cet article n'est plus disponible.",
    not_your_turn: "Ce n'est pas à vous de répondre.",
    offer_exists: "Vous avez déjà une offre en cours pour cet article.",
    offer_closed: "Cette offre est fermée.",
    blocked: "Une offre n'est pas possible entre vous et ce membre.",
    limit_reached: "Votre liste est pleine : retirez-en un élément d'abord.",
    restricted: "La modération a restreint votre compte : vous ne pouvez pas écrire pour l'instant.",
    offer_expired: "Cette offre a expiré (72 heures sans réponse).",
    price_out_of_range: (d, money) =>
      d && d.max_exclusive != null
        ? `Le prix doit être entre ${money(d.min_exclusive)} et ${money(d.max_exclusive)} (exclus).`
        : "Ce prix n'est pas possible.",
    discount_too_small: (d, money) => `Réduction insuffisante : au plus ${money(d?.max_amount)}.`,
    too_many_recipients: "20 membres au plus à la fois.",
    read_only: "Cette conversation est terminée.",
    connection_lost: "Connexion perdue : réessayez.",
    timeout: "Pas de réponse : réessayez.",
    unauthorized: "Votre session a expiré.",
    other: "Une erreur est survenue.",
  },
  time: { h: "h", min: "min", s: "s" },
};

const en = {
  lang: "en",
  intl: "en-CA", // Canadian English: $80.00, not CA$80.00
  languageName: "English",
  language: "Language",
  widgetLabel: "Marketplace chat",
  connecting: "Connecting…",
  reconnecting: "Connection lost, reconnecting…",
  closed: "Disconnected. Reload the page.",
  startProblems: {
    expired: { what: "Your session has expired.", next: "Reload the page or sign in again." },
    refused: { what: "This conversation is not open to you.", next: "Check that you are signed in with the right account." },
    offline: { what: "The chat service cannot be reached.", next: "Check your Internet connection, then try again." },
    unavailable: { what: "The chat is unavailable for a moment.", next: "Your messages are kept. Try again in a few minutes." },
  },
  linkProblems: {
    expired: { what: "This link has expired.", next: "Open the conversation from “My orders” in the app: it is waiting for you there." },
    refused: { what: "This conversation cannot be opened with this link.", next: "Open it from “My orders” in the app." },
  },
  retry: "Try again",
  openApp: "Open the app",
  signedInAs: (name) => `Signed in as @${name}`,
  back: "Back",
  catalog: "Items for sale",
  by: (name) => `Sold by @${name}`,
  watching: (n) => (n > 1 ? `${n} members are watching this item` : "1 member is watching this item"),

  bell: (n) => (n ? `Notifications, ${n} unread` : "Notifications, none unread"),
  notifications: "Notifications",
  noNotifications: "No notifications.",
  close: "Close",

  myOrders: "My orders",
  sales: "Sales",
  purchases: "Purchases",
  noOrders: "No orders yet.",
  openChat: (name, title) => `Open the conversation with @${name} about “${title}”`,
  unreadCount: (n) => `${n} unread`,
  counterpartBuyer: (name) => `Buyer: @${name}`,
  counterpartSeller: (name) => `Seller: @${name}`,
  lastBy: (name, text) => `@${name}: ${text}`,
  someone: "a member",
  orderNumber: (id) => `Order ${id}`,
  status: {
    created: "Order created",
    shipped: "Shipped",
    delivered: "Delivered",
    return_requested: "Return requested",
    return_accepted: "Return accepted",
    return_declined: "Return declined",
    completed: "Completed",
    cancelled: "Cancelled",
  },

  price: "Price",
  buy: "Buy",
  buyNote: "Checkout happens in the marketplace app.",
  makeOffer: "Make an offer",
  offerAmount: "Your offer ($)",
  sendOffer: "Send offer",
  cancel: "Cancel",
  offerBelowPrice: (max) => `Your offer must be below the item price (${max}).`,
  badAmount: "Enter an amount, for example 45 or 45.50.",

  sellerTools: "Seller tools",
  offersSwitch: "Accept offers from buyers",
  offersOnNote: "Buyers see “Make an offer” next to “Buy”.",
  offersOffNote: "Switch it on so that buyers can make you an offer.",
  likers: "Members who favourited this item",
  showLikers: "See the members who favourited this item",
  noLikers: "Nobody has favourited this item yet.",
  likedAt: (when) => `favourited ${when}`,
  sendOfferTo: (name) => `Send offer to @${name}`,
  sendOfferShort: "Send offer",
  globalOffer: "Global offer",
  globalOfferTo: "Global offer: to the 20 most recent members who favourited the item",
  offerToOne: (name) => `Offer to @${name}`,
  hasOpenOffer: "offer open",
  tenPercentRule: (max) =>
    `The discount must be at least 10 % of the item price, shipping, buyer protection fee and taxes excluded: your price can be at most ${max}. Your buyers will have 72 hours to accept or counter; without an answer, the offer expires.`,
  tenPercentBroken: (max) => `Not enough of a discount: offer at most ${max}.`,
  sentTo: (n) => (n > 1 ? `Offer sent to ${n} members.` : n === 1 ? "Offer sent to 1 member." : "No offer sent."),
  skipped: (name, reason) => `@${name}: ${{ offer_exists: "already has an open offer", not_a_liker: "has not favourited the item", own_listing: "it is your item" }[reason] ?? reason}`,

  negotiations: "Offers",
  negotiationWith: (name) => `Offer with @${name}`,
  itemPrice: (p) => `Item price: ${p}`,
  currentPrice: (p, pct) => `Price offered: ${p} (−${pct} %)`,
  priceBy: { buyer: "Buyer", seller: "Seller" },
  priceStep: (by, p) => `${{ buyer: "Buyer", seller: "Seller" }[by] ?? by}: ${p}`,
  yourTurn: "Your turn to answer",
  theirTurn: { buyer: "Waiting for the buyer's answer", seller: "Waiting for the seller's answer" },
  expiresIn: (left) => `Expires in ${left}`,
  state: {
    open: "Open",
    accepted: "Accepted",
    declined: "Declined",
    withdrawn: "Withdrawn",
    expired: "Expired",
    item_sold: "Item sold",
  },
  agreed: (p) => `Price agreed: ${p}. Checkout happens in the marketplace app.`,
  accept: "Accept",
  decline: "Decline",
  counter: "Counter",
  counterAmount: "Your counter-offer ($)",
  sendCounter: "Send counter-offer",
  withdraw: "Withdraw offer",

  comments: "Comments",
  commentsHelp: "Questions and answers appear here, under the photos and the price. Private conversations open only once the item is bought.",
  noComments: "No comments yet. Ask a question!",
  olderComments: "Older comments",
  yourComment: "Your comment",
  commentPlaceholder: "Ask a question… (type @ to tag a member)",
  post: "Post",
  suggestions: "Members",
  suggestionsCount: (n) => (n ? `${n} suggestion${n > 1 ? "s" : ""}: arrows to choose, Enter to insert` : ""),
  edited: "(edited)",
  deleted: "Comment deleted.",
  removed: "Comment removed by moderation.",
  held: "Comment hidden pending review.",
  blockedComment: (name) => `Comment hidden: you blocked @${name}.`,
  block: "Block",
  blockWho: (name) => `Block @${name}`,
  unblock: "Unblock",
  unblockWho: (name) => `Unblock @${name}`,
  report: "Report",
  reportWhat: (name) => `Report @${name}'s comment`,
  reportTitle: "Report this comment to the moderators",
  reportReason: "Reason",
  reportNote: "Details (optional)",
  sendReport: "Send report",
  reportSent: "Thank you: the moderators will review this comment. The member will not know who reported it.",
  reportAlready: "You already reported this comment.",
  reasons: {
    spam: "Spam",
    scam: "Scam",
    off_platform: "A deal outside the platform",
    harassment: "Harassment",
    inappropriate: "Inappropriate content",
    other: "Other",
    illegal: "Illegal content",
    terms: "Terms of use",
  },
  restrictions: { read_only: "read-only", suspended: "account suspended" },
  maskedBadge: "Contact details hidden",
  maskedNotice: (kinds) =>
    `We hid ${listWords(kinds.map((k) => KINDS_EN[k] ?? k), "and")} in your message: members don't need to share contact details. Transactions made outside the platform are not covered by buyer protection.`,
  notified: (n) => (n > 1 ? `${n} tagged members were notified.` : "The tagged member was notified."),
  privacyTip: "No need to share your e-mail address, phone number or social-media handles.",

  conversation: "Private conversation",
  conversationAbout: (title) => `Private conversation: ${title}`,
  online: "online",
  offline: "offline",
  typing: (name) => `@${name} is typing…`,
  seen: "Seen",
  yourMessage: "Your message",
  messagePlaceholder: "Write a message… (address, tracking number, return)",
  send: "Send",
  disclaimer: "Transactions made outside the platform are not covered by buyer protection.",
  readOnly: "This conversation has ended: it stays readable.",
  orderOpened:
    "Order confirmed. Use this private conversation to confirm the address, share a tracking number, discuss a return or check the order's status.",
  system: {
    listing_edited: "The seller edited the listing.",
    listing_photos_added: (n) => (n > 1 ? `The seller added ${n} photos.` : "The seller added a photo."),
    listing_price_changed: "The seller changed the price.",
    listing_status_changed: "The listing's status changed.",
  },
  trackParcel: "Track the parcel",
  sessionExpired: "This link has expired: open the conversation from “My orders” in the app.",

  notification: {
    mention: (n) => `@${n.author?.name} tagged you: “${n.excerpt}”`,
    order_opened: (n) =>
      n.role === "seller" ? `Sold: ${n.listing_title ?? n.listing_id}. The private conversation is open.` : `Order confirmed: ${n.listing_title ?? n.listing_id}. The private conversation is open.`,
    order_message: (n) => `@${n.author?.name} (order ${n.order_id}): “${n.excerpt}”`,
    order_status: (n, t) => `Order ${n.order_id}: ${t.status[n.status] ?? n.status}${n.tracking_number ? ` (tracking ${n.tracking_number})` : ""}`,
    offer_received: (n, t, m) => `@${n.author?.name} offers ${m} for “${n.listing_title ?? n.listing_id}”`,
    offer_countered: (n, t, m) => `@${n.author?.name} proposes ${m} for “${n.listing_title ?? n.listing_id}”`,
    offer_accepted: (n, t, m) => `@${n.author?.name} accepted ${m} for “${n.listing_title ?? n.listing_id}”`,
    offer_declined: (n, t, m) => `@${n.author?.name} declined ${m} for “${n.listing_title ?? n.listing_id}”`,
    offer_withdrawn: (n, t, m) => `@${n.author?.name} withdrew the offer of ${m} for “${n.listing_title ?? n.listing_id}”`,
    offer_expired: (n, t, m) => `The offer of ${m} for “${n.listing_title ?? n.listing_id}” expired.`,
    offer_item_sold: (n) => `“${n.listing_title ?? n.listing_id}” sold: the offer is closed.`,
    moderation: (n, t) =>
      n.action === "member_restricted"
        ? `Your account is restricted (${t.restrictions[n.restriction] ?? n.restriction}): ${n.statement}`
        : `Your comment was removed by moderation (${t.reasons[n.reason] ?? n.reason}): ${n.statement}`,
    other: "New notification",
  },

  errors: {
    order_required: "A private conversation opens only once the item is bought.",
    forbidden: "You don't have access to this.",
    not_found: "Not found: the listing may have been deleted.",
    rate_limited: "Too many messages at once: try again in a moment.",
    unavailable: "Service briefly unavailable: try again.",
    too_large: "Message too long.",
    contact_details: "No contact details in messages: keep the conversation on the platform.",
    offers_disabled: "The seller does not take offers on this item.",
    listing_unavailable: "This item is no longer available.",
    not_your_turn: "It is not your turn to answer.",
    offer_exists: "You already have an open offer on this item.",
    offer_closed: "This offer is closed.",
    blocked: "An offer between you and this member is not possible.",
    limit_reached: "Your list is full: remove an item first.",
    restricted: "The moderators restricted your account: you cannot write for now.",
    offer_expired: "This offer expired (72 hours without an answer).",
    price_out_of_range: (d, money) =>
      d && d.max_exclusive != null
        ? `The price must be between ${money(d.min_exclusive)} and ${money(d.max_exclusive)} (both excluded).`
        : "This price is not possible.",
    discount_too_small: (d, money) => `Not enough of a discount: at most ${money(d?.max_amount)}.`,
    too_many_recipients: "At most 20 members at once.",
    read_only: "This conversation has ended.",
    connection_lost: "Connection lost: try again.",
    timeout: "No answer: try again.",
    unauthorized: "Your session has expired.",
    other: "Something went wrong.",
  },
  time: { h: "h", min: "min", s: "s" },
};

export const STRINGS = { "fr-CA": fr, en };

/** Money in integer minor units, written the locale's way: `80,00 $` or `$80.00`. */
export function formatMoney(amount, currency, locale) {
  if (amount == null) return "";
  const format = new Intl.NumberFormat(locale, { style: "currency", currency: currency || "CAD" });
  const digits = format.resolvedOptions().maximumFractionDigits;
  // Display only: the amount itself stays an integer everywhere else.
  return format.format(amount / 10 ** digits);
}

/**
 * Minor units from what a member typed (`45`, `45.5`, `45,50`, `1 200,00`), or null.
 * Parsed as text, never through a float.
 */
export function parseMoney(text, digits = 2) {
  const cleaned = String(text).replace(/[\s\u00a0\u202f$]/g, "");
  const match = /^(\d{1,12})(?:[.,](\d{1,2}))?$/.exec(cleaned);
  if (!match) return null;
  const cents = (match[2] ?? "").padEnd(digits, "0").slice(0, digits);
  const amount = Number(match[1]) * 10 ** digits + Number(cents || "0");
  return amount > 0 ? amount : null;
}

/** The highest price a seller may send to likers (R6): 10 * amount <= 9 * item_price. */
export function maxLikersOffer(itemPrice) {
  return Math.floor((9 * itemPrice) / 10);
}

/** A duration for a countdown: `71 h 59 min 58 s`. */
export function formatCountdown(ms, t) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h ? `${h} ${t.time.h} ${m} ${t.time.min} ${s} ${t.time.s}` : `${m} ${t.time.min} ${s} ${t.time.s}`;
}

/** A time of day, or a date and time for older ones. */
export function formatTime(ms, locale) {
  const date = new Date(ms);
  const sameDay = new Date().toDateString() === date.toDateString();
  return new Intl.DateTimeFormat(locale, sameDay ? { timeStyle: "short" } : { dateStyle: "medium", timeStyle: "short" }).format(date);
}

/** "3 minutes ago", in the locale. */
export function formatAgo(ms, locale, now = Date.now()) {
  const seconds = Math.round((ms - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
  const steps = [
    [60, "second"],
    [3600, "minute"],
    [86400, "hour"],
    [Infinity, "day"],
  ];
  let unit = 1;
  for (const [limit, name] of steps) {
    if (Math.abs(seconds) < limit) return rtf.format(Math.round(seconds / unit), name);
    unit = limit;
  }
  return "";
}
