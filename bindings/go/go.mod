module github.com/akidb/akidb-go

go 1.19
