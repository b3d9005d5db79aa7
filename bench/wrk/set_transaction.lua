dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
function request()
  local tx = next_name()
  local body = '{"purchase_type": "subscription", "store": "app_store", "store_product_id": "monthly",' ..
    ' "store_transaction_id": "' .. tx .. '", "store_original_transaction_id": "' .. tx .. '",' ..
    ' "price": {"country": "US", "currency": "USD", "value": 9.99},' ..
    ' "purchased_at": "2025-01-01T00:00:00Z", "originally_purchased_at": "2025-01-01T00:00:00Z",' ..
    ' "expires_at": "2025-02-01T00:00:00Z", "renew_status": true}'
  return wrk.format("POST", "/api/v2/server-side-api/purchase/set/transaction/", headers(seeded_user()), body)
end
